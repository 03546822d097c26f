#!/usr/bin/env bash
# Starts or stops a private nginx for backstop-bench's real-server scenarios.
#
#   scripts/nginx.sh start DIR   installs nginx if missing (Debian packages),
#                                writes DIR/nginx.conf, picks a free loopback
#                                port (written to DIR/port) and starts nginx
#   scripts/nginx.sh stop DIR    sends QUIT to the nginx whose pid is in DIR/nginx.pid
#
# Endpoints (all on 127.0.0.1:$(cat DIR/port)):
#   /limited  limit_req 50 r/s, burst 10 nodelay, shared by every client;
#             refusals are 429 with `Retry-After: 1`
#   /flaky    503 for ~20 % of requests, 200 otherwise
# Every request is logged to DIR/access.log as "$msec $request_uri $status".
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

find_nginx() {
    command -v nginx 2>/dev/null && return 0
    [ -x /usr/sbin/nginx ] && { echo /usr/sbin/nginx; return 0; }
    return 1
}

install_nginx() {
    echo "nginx not found; installing it from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    # nginx-light is gone from newer Debian releases; plain nginx then.
    if ! as_root apt-get install -y nginx-light >&2 && ! as_root apt-get install -y nginx >&2; then
        as_root apt-get update >&2
        as_root apt-get install -y nginx-light >&2 || as_root apt-get install -y nginx >&2
    fi
    # The package may start a system nginx on port 80; we do not need it.
    as_root systemctl disable --now nginx >/dev/null 2>&1 || true
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

write_conf() {
    local port=$1
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root;"
    cat >"$dir/nginx.conf" <<CONF
# Written by scripts/nginx.sh for backstop-bench; do not edit.
$user_line
daemon on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 4096;
}

http {
    log_format bench '\$msec \$request_uri \$status';
    access_log $dir/access.log bench;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 100000;
    default_type text/plain;

    # A constant key: every client shares the one 50 r/s limit.
    limit_req_zone \$server_name zone=api:1m rate=50r/s;
    limit_req_status 429;
    limit_req_log_level info;

    split_clients "\${remote_port}\${msec}\${request_id}" \$flaky {
        20% 503;
        *   200;
    }

    server {
        listen 127.0.0.1:$port;
        server_name bench;

        location /limited {
            # Not `return 200`: `return` runs in the rewrite phase, before
            # limit_req (preaccess) would, and nothing would be limited.
            limit_req zone=api burst=10 nodelay;
            error_page 429 = @throttled;
            root $dir/www;
            try_files /ok.txt =404;
        }

        location @throttled {
            add_header Retry-After 1 always;
            return 429 "throttled\n";
        }

        location /flaky {
            if (\$flaky = 503) {
                return 503 "unavailable\n";
            }
            return 200 "ok\n";
        }

        location / {
            return 404;
        }
    }
}
CONF
}

case $cmd in
start)
    nginx_bin=$(find_nginx) || { install_nginx; nginx_bin=$(find_nginx); } || { echo "nginx still not found after install" >&2; exit 1; }
    if [ -f "$dir/nginx.pid" ] && kill -0 "$(cat "$dir/nginx.pid")" 2>/dev/null; then
        echo "nginx already running from $dir (pid $(cat "$dir/nginx.pid"))" >&2
        exit 1
    fi
    mkdir -p "$dir/tmp" "$dir/logs" "$dir/www"
    printf 'ok\n' >"$dir/www/ok.txt"
    : >"$dir/access.log"
    port=$(free_port)
    write_conf "$port"
    "$nginx_bin" -t -q -p "$dir" -c "$dir/nginx.conf"
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf"
    # Wait until it listens.
    for _ in $(seq 1 50); do
        if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
            echo "$port" >"$dir/port"
            echo "nginx listening on 127.0.0.1:$port (dir $dir)" >&2
            exit 0
        fi
        sleep 0.1
    done
    echo "nginx did not start listening on $port; see $dir/error.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$dir/nginx.pid" ]; then
        pid=$(cat "$dir/nginx.pid")
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
        echo "nginx stopped (dir $dir)" >&2
    else
        echo "no nginx pid file in $dir" >&2
    fi
    ;;
*) usage ;;
esac
