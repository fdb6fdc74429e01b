#!/bin/sh
# host-tool.sh — runs the HOST's copy of a tool from inside a container that
# has the host root bind-mounted at /host (read-only). Installed under the
# tool's own name (multipath, multipathd, dmsetup): the name picks the tool.
#
# Why the host's binary and not one in the image: multipathd's client speaks
# a protocol that must match the running daemon, and multipath/dmsetup must
# agree with the host's multipath.conf and libdevmapper. democratic-csi runs
# iscsiadm and multipath the same way (docker/multipath in its repository).
set -eu

root="${HOST_TOOL_ROOT:-/host}"
tool="$(basename -- "$0")"
case "$tool" in
  multipath | multipathd | dmsetup) ;;
  *)
    printf 'host-tool: %s is not a tool this wrapper may run on the host\n' "$tool" >&2
    exit 127
    ;;
esac
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$tool" "$@"
