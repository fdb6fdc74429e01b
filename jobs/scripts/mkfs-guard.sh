#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# mkfs-guard.sh — stands in for every formatter and partitioner inside the
# democratic-csi node plugin container (mkfs.ext4, mkfs.xfs, mkfs.vfat, mke2fs,
# mkswap, sfdisk, gdisk, …; see jobs/democratic-csi-node.nomad.hcl). The name
# it is called by says which tool it stands in for.
#
# democratic-csi formats in NodeStageVolume whenever its probe says "not
# formatted", and it has no setting that turns auto-format off. A probe of a
# multipath map with no usable path answers "not formatted" for a disk full of
# data; mkfs then destroys it. So this guard refuses every tool but
# mkfs.<fs> for fs in $MKFS_GUARD_ALLOWED_FS, and refuses those too unless
#   1. an operator allow-listed the device as new (path or WWID, one a line,
#      in $MKFS_GUARD_ALLOW_LIST), and
#   2. the device is proven blank and readable now (lib/blank-proof.sh:
#      direct reads of the first and last MiB complete in time and are zeros,
#      blkid -p and wipefs -n find nothing, a multipath map has an active group).
# An allow-list entry is used once: it is removed before the real mkfs runs,
# so a second attempt on the same device is refused.
#
# Partition tables are read, never written. sfdisk's report forms (--dump,
# --list, --json, --show-size, --version, with at most --unit S) run the
# real sfdisk: growpart, which democratic-csi runs on the last partition of
# a partitioned volume whenever it stages one, reads the table with them.
# Every write (growpart's own resize, ntfs's partitioning, any gdisk/sgdisk
# call) is refused, so a volume with a partition table does NOT grow its
# partition: democratic-csi ignores growpart's failure and the filesystem
# stays inside the old partition. The REFUSE line is in the plugin's log;
# grow such a partition on the host (terraform/README.md "The mkfs guard and
# new volumes").
#
# Every decision is one line on stderr, which democratic-csi copies into its
# "failed to execute filesystem command" log line:
#   mkfs-guard: REFUSE <device>: <reason>
#   mkfs-guard: FORMAT <device>: <what ran>
#   mkfs-guard: READ <device>: <what ran>
#
# Settings (environment):
#   MKFS_GUARD_ALLOWED_FS  filesystems that may be created, space-separated
#                          (default "ext4 xfs")
#   MKFS_GUARD_ALLOW_LIST  allow-list file (default /etc/writ/mkfs-allow)
#   MKFS_GUARD_REAL_DIR    directory holding the real mkfs.* (default /usr/sbin)
#   MKFS_GUARD_LIB         blank-proof library (default: lib/blank-proof.sh
#                          beside this script, else /opt/writ/lib/blank-proof.sh)
#   BLANK_PROOF_TIMEOUT, BLANK_PROOF_STATE_DIR — see lib/blank-proof.sh
set -eu

tool="$(basename -- "$0")"
case "$tool" in
  mkfs-guard.sh | mkfs-guard) tool="${MKFS_GUARD_TOOL:-mkfs.ext4}" ;;
esac

log() {
  printf 'mkfs-guard: %s\n' "$*" >&2
}

refuse() {
  log "REFUSE $1: $2"
  if command -v bp_cleanup >/dev/null 2>&1; then
    bp_cleanup
  fi
  exit 32
}

real_dir="${MKFS_GUARD_REAL_DIR:-/usr/sbin}"
real="$real_dir/$tool"

# The real binary behind this name, or a refusal. Bind-mounted over the real
# binary by mistake, the guard would call itself.
check_real() {
  if [ ! -x "$real" ]; then
    refuse "$1" "real $tool not found at $real"
  fi
  if [ "$(readlink -f -- "$real")" = "$(readlink -f -- "$0")" ]; then
    refuse "$1" "MKFS_GUARD_REAL_DIR points at the guard itself ($real)"
  fi
}

# True when an sfdisk command line only reports: exactly one report command,
# sector units at most, and device names. Anything else may write.
sfdisk_reads_only() {
  reports=0
  unit_next=""
  for arg in "$@"; do
    if [ -n "$unit_next" ]; then
      [ "$arg" = "S" ] || return 1
      unit_next=""
      continue
    fi
    case "$arg" in
      -d | --dump | -l | --list | -J | --json | -s | --show-size | -v | --version) reports=$((reports + 1)) ;;
      --unit=S | -uS) ;;
      -u | --unit) unit_next="yes" ;;
      -*) return 1 ;;
    esac
  done
  [ -z "$unit_next" ] && [ "$reports" -eq 1 ]
}

if [ "$tool" = "sfdisk" ] && sfdisk_reads_only "$@"; then
  target="$(for a in "$@"; do case "$a" in -* | S) ;; *) printf '%s ' "$a" ;; esac; done)"
  target="${target% }"
  check_real "${target:-<none>}"
  log "READ ${target:-<none>}: sfdisk $* changes nothing; running $real"
  exec "$real" "$@"
fi

# The device is the one argument naming a block device (or a /dev path that
# may have vanished). Options such as `-m 0` carry values, so "the last
# argument" is not reliable; refusing on ambiguity is the safe side.
device=""
candidates=0
last=""
for arg in "$@"; do
  case "$arg" in
    -*) ;;
    *)
      last="$arg"
      if [ -b "$arg" ] || case "$arg" in /dev/*) true ;; *) false ;; esac; then
        candidates=$((candidates + 1))
        device="$arg"
      fi
      ;;
  esac
done
if [ "$candidates" -gt 1 ]; then
  refuse "$*" "more than one argument names a device; cannot tell which one to check"
fi
if [ "$candidates" -eq 0 ]; then
  device="${last:-<none>}"
fi

# Only mkfs.<fs> for an allowed fs goes on to the proof; every other formatter
# (another fs_type, mke2fs, mkswap, the mkfs front end, which would find the
# real mkfs.<fs> through its own PATH) and every partitioner stops here.
allowed_fs="${MKFS_GUARD_ALLOWED_FS:-ext4 xfs}"
fs=""
case "$tool" in
  mkfs.?*) fs="${tool#mkfs.}" ;;
esac
permitted=""
if [ -n "$fs" ]; then
  for a in $allowed_fs; do
    if [ "$a" = "$fs" ]; then
      permitted="yes"
    fi
  done
fi
if [ -z "$permitted" ]; then
  case "$tool" in
    *fdisk | *gdisk | fixparts)
      refuse "$device" "$tool would write a partition table, which this plugin never does (only sfdisk's report forms are let through); nothing was run. A partitioned volume does not grow its partition here: grow it on the host"
      ;;
  esac
  refuse "$device" "$tool is not a format path this plugin may use (only mkfs.<fs> for: $allowed_fs, after the blank-and-readable proof); nothing was run"
fi

if [ "$device" = "<none>" ]; then
  refuse "$device" "no device argument given"
fi

here="$(dirname -- "$0")"
lib="${MKFS_GUARD_LIB:-}"
if [ -z "$lib" ]; then
  if [ -r "$here/lib/blank-proof.sh" ]; then
    lib="$here/lib/blank-proof.sh"
  else
    lib="/opt/writ/lib/blank-proof.sh"
  fi
fi
if [ ! -r "$lib" ]; then
  refuse "$device" "blank-proof library $lib is missing; refusing rather than formatting unchecked"
fi
# shellcheck source=lib/blank-proof.sh
. "$lib"
trap 'bp_cleanup' EXIT

check_real "$device"

allow_list="${MKFS_GUARD_ALLOW_LIST:-/etc/writ/mkfs-allow}"

# Prints the allow-list entry matching one of the device's identifiers.
allowed_entry() {
  [ -r "$allow_list" ] || return 1
  ids="$(bp_device_ids "$device")"
  while IFS= read -r line || [ -n "$line" ]; do
    entry="$(printf '%s' "$line" | sed 's/#.*//; s/^[[:space:]]*//; s/[[:space:]]*$//')"
    [ -n "$entry" ] || continue
    if printf '%s\n' "$ids" | grep -qxF -- "$entry"; then
      printf '%s\n' "$entry"
      return 0
    fi
  done <"$allow_list"
  return 1
}

if [ ! -e "$allow_list" ]; then
  refuse "$device" "not allow-listed as new (allow-list $allow_list does not exist)"
fi
if ! entry="$(allowed_entry)"; then
  refuse "$device" "not allow-listed as new in $allow_list; a device that merely looks blank is never formatted"
fi

if ! bp_prove_blank "$device"; then
  refuse "$device" "allow-listed, but not proven blank and readable: $BP_REASON"
fi

# Claim the entry under a lock so two concurrent stage calls cannot both
# format: whoever removes the line formats, the other finds it gone.
lock="$allow_list.lock"
tries=50
until mkdir -- "$lock" 2>/dev/null; do
  tries=$((tries - 1))
  if [ "$tries" -le 0 ]; then
    refuse "$device" "allow-list $allow_list is locked ($lock); not formatting"
  fi
  sleep 0.1
done
claimed=""
tmp="$allow_list.tmp.$$"
: >"$tmp"
while IFS= read -r line || [ -n "$line" ]; do
  stripped="$(printf '%s' "$line" | sed 's/#.*//; s/^[[:space:]]*//; s/[[:space:]]*$//')"
  if [ -z "$claimed" ] && [ "$stripped" = "$entry" ]; then
    claimed="yes"
    continue
  fi
  printf '%s\n' "$line" >>"$tmp"
done <"$allow_list"
if [ -z "$claimed" ]; then
  rm -f -- "$tmp"
  rmdir -- "$lock"
  refuse "$device" "allow-list entry $entry was claimed by another format attempt"
fi
# cat into the original keeps its inode, owner and mode (and works when the
# file is a bind mount, where rename over it would fail).
cat -- "$tmp" >"$allow_list"
rm -f -- "$tmp"
rmdir -- "$lock"

log "FORMAT $device: allow-listed as $entry (entry removed), proven blank and readable; running $real $*"
bp_cleanup
trap - EXIT
exec "$real" "$@"
