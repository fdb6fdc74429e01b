#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# format-new-volume.sh — the operator's way to put a filesystem on a NEW LUN,
# so that the CSI plugin finds one and never has to format anything itself.
#
#   format-new-volume.sh [-L LABEL] DEVICE
#
# Runs the same blank-and-readable proof as the mkfs guard (lib/blank-proof.sh),
# then `mkfs.xfs` WITHOUT -f: mkfs.xfs itself refuses a device that carries
# any signature, a second independent check. Prints what it did.
#
# Settings (environment):
#   FORMAT_NEW_VOLUME_MKFS  mkfs.xfs to run (default: mkfs.xfs on PATH)
#   BLANK_PROOF_TIMEOUT, BLANK_PROOF_STATE_DIR — see lib/blank-proof.sh
set -eu

usage() {
  printf 'usage: %s [-L LABEL] DEVICE\n' "$(basename -- "$0")" >&2
  exit 64
}

label=""
while getopts 'L:h' opt; do
  case "$opt" in
    L) label="$OPTARG" ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ "$#" -eq 1 ] || usage
device="$1"

# shellcheck source=lib/blank-proof.sh
. "$(dirname -- "$0")/lib/blank-proof.sh"
trap 'bp_cleanup' EXIT

refuse() {
  printf 'format-new-volume: REFUSE %s: %s\n' "$device" "$1" >&2
  exit 32
}

mkfs="${FORMAT_NEW_VOLUME_MKFS:-mkfs.xfs}"
command -v "$mkfs" >/dev/null 2>&1 || refuse "$mkfs not found"

if ! bp_prove_blank "$device"; then
  refuse "not proven blank and readable: $BP_REASON"
fi
printf 'format-new-volume: %s proven blank and readable (first and last MiB read as zeros, no blkid or wipefs signature)\n' "$device"

set -- "$device"
if [ -n "$label" ]; then
  set -- -L "$label" "$@"
fi
printf 'format-new-volume: running %s %s\n' "$mkfs" "$*"
if ! "$mkfs" "$@"; then
  refuse "$mkfs failed; nothing else was changed"
fi

fs="$(blkid -p -o value -s TYPE -- "$device" 2>/dev/null || :)"
uuid="$(blkid -p -o value -s UUID -- "$device" 2>/dev/null || :)"
printf 'format-new-volume: FORMATTED %s as %s (UUID %s)\n' "$device" "${fs:-unknown}" "${uuid:-unknown}"
