#!/bin/sh
# The page is in the image, and the drafts .dockerignore excludes are not.
set -eu
grep -q 'Hello from Wharf' /www/index.html
if [ -e /www/drafts ]; then
  echo "FAIL: /www/drafts is in the image" >&2
  exit 1
fi
echo "content ok"
