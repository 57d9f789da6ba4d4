#!/bin/sh
# The image's web server starts and answers with the page.
set -eu
port=$((20000 + RANDOM % 20000))
httpd -p "127.0.0.1:$port" -h /www
for i in 1 2 3 4 5 6 7 8 9 10; do
  if wget -q -O - "http://127.0.0.1:$port/" | grep -q 'Hello from Wharf'; then
    echo "serve ok on port $port"
    exit 0
  fi
  sleep 1
done
echo "FAIL: no answer on port $port" >&2
exit 1
