#!/bin/sh
# Makes the image the example builds FROM, hello-base:1, out of this machine's statically linked busybox
# (Debian: apt-get install busybox-static), so nothing is pulled from a registry. Another base with a busybox
# userland works too: pipeline.build.args.BASE in wharf.yaml.
set -eu
busybox=${BUSYBOX:-/bin/busybox}
image=${1:-hello-base:1}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" --numeric-owner --owner=0 --group=0 -c . | docker import --change 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "made $image"
