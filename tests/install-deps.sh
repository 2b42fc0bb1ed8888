#!/bin/sh
# install-deps.sh: install what `make test` and `make demo` need on a fresh
# Debian machine, only what is missing (apt-get update runs only then).
# Run as root; a non-root run only says what is missing.
set -eu

need=""
add() { case " $need " in *" $1 "*) ;; *) need="$need $1" ;; esac; }

command -v ip >/dev/null 2>&1 || add iproute2
command -v ss >/dev/null 2>&1 || add iproute2
command -v ethtool >/dev/null 2>&1 || add ethtool
command -v nft >/dev/null 2>&1 || add nftables
command -v tc >/dev/null 2>&1 || add iproute2
if [ "${1:-}" != demo ]; then
	command -v shellcheck >/dev/null 2>&1 || add shellcheck
	# The bed runs Debian's server binaries from /usr/lib/postgresql.
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || add postgresql
fi

[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$need (run as root to install them)" >&2
	exit 0
fi
echo "install-deps: installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $need
