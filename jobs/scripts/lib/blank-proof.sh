# shellcheck shell=sh
# blank-proof.sh — sourced by mkfs-guard.sh and format-new-volume.sh.
#
# Proves that a block device is blank AND readable before anything formats it.
# "blkid found nothing" is not proof: on a multipath map with no usable path,
# blkid exits 2 with empty output, exactly like a truly blank disk
# (kubernetes/kubernetes#95183, and the incident writ exists for). Only a read
# of the data that completed, in time, proves the device answered at all.
#
# A direct read on a map that queues I/O (queue_if_no_path) blocks in
# uninterruptible sleep: it cannot be killed, and `timeout` cannot reap it.
# So every probe here runs in a background child whose stdio is detached from
# ours, and we stop waiting at the deadline instead of waiting on the child.
# A stuck child is left behind (nothing can end it) and recorded in a marker,
# so a later attempt refuses at once instead of piling up a second reader.
#
# Interface:
#   bp_device_ids DEV    print the identifiers DEV is known by (path, resolved
#                        path, kernel node /dev/dm-N, /dev/mapper name, map
#                        name, dm uuid, WWID), one a line; found by major:minor
#                        in sysfs, so any node of the device will do
#   bp_prove_blank DEV   return 0 when DEV is proven blank and readable;
#                        otherwise return 1 with the reason in BP_REASON
#   bp_cleanup           remove the scratch directory (call before exit/exec)
#
# Settings (environment):
#   BLANK_PROOF_TIMEOUT    seconds each probe may take (default 10, 1..600)
#   BLANK_PROOF_STATE_DIR  where stuck-reader markers live (default /run/writ-blank-proof)

BP_MIB=1048576
BP_REASON=""
BP_WORK=""
BP_RC=""
BP_PID=""

bp_fail() {
  BP_REASON="$1"
  return 1
}

bp_need_tools() {
  for _bp_tool in "$@"; do
    command -v "$_bp_tool" >/dev/null 2>&1 || bp_fail "required tool '$_bp_tool' not found on PATH" || return 1
  done
}

bp_timeout() {
  _bp_t="${BLANK_PROOF_TIMEOUT:-10}"
  case "$_bp_t" in
    '' | *[!0-9]*) _bp_t=10 ;;
  esac
  if [ "$_bp_t" -lt 1 ] || [ "$_bp_t" -gt 600 ]; then
    _bp_t=10
  fi
  printf '%s\n' "$_bp_t"
}

bp_workdir() {
  if [ -z "$BP_WORK" ]; then
    BP_WORK="$(mktemp -d "${TMPDIR:-/tmp}/blank-proof.XXXXXX")" || bp_fail "cannot create a scratch directory" || return 1
  fi
}

bp_cleanup() {
  if [ -n "$BP_WORK" ]; then
    rm -rf -- "$BP_WORK"
    BP_WORK=""
  fi
}

# bp_bounded SECONDS OUT CMD [ARG...]
# Runs CMD with stdout to OUT and stderr to OUT.err. Returns 0 with CMD's exit
# code in BP_RC when it finished in time, 124 when the deadline passed (BP_PID
# is then the still-running command). The child's stdio never touches ours: a
# caller that waits for our pipes to close (Node's child_process does) would
# otherwise hang on a reader that cannot be killed.
bp_bounded() {
  _bp_secs="$1"
  _bp_out="$2"
  shift 2
  rm -f -- "$_bp_out.rc" "$_bp_out.pid"
  (
    set +e
    "$@" <"/dev/null" >"$_bp_out" 2>"$_bp_out.err" &
    printf '%s\n' "$!" >"$_bp_out.pid"
    wait "$!"
    printf '%s\n' "$?" >"$_bp_out.rc.tmp"
    mv -f -- "$_bp_out.rc.tmp" "$_bp_out.rc"
  ) </dev/null >/dev/null 2>&1 &
  _bp_sub=$!
  _bp_ticks=$((_bp_secs * 10))
  while [ ! -f "$_bp_out.rc" ]; do
    if [ "$_bp_ticks" -le 0 ]; then
      BP_PID="$(cat -- "$_bp_out.pid" 2>/dev/null || printf '%s' "$_bp_sub")"
      # Best effort: an ordinary hang dies here; a reader in D state does not,
      # and we must not wait for it either way.
      kill "$BP_PID" 2>/dev/null || :
      return 124
    fi
    sleep 0.1
    _bp_ticks=$((_bp_ticks - 1))
  done
  BP_RC="$(cat -- "$_bp_out.rc")"
  return 0
}

bp_first_line() {
  # First line of a file, for log messages that must stay on one line.
  if [ -s "$1" ]; then
    sed -n '1{s/[[:cntrl:]]/ /g;p;}' -- "$1"
  else
    printf '%s' "no output"
  fi
}

bp_marker_for() {
  _bp_state="${BLANK_PROOF_STATE_DIR:-/run/writ-blank-proof}"
  printf '%s/%s.reader\n' "$_bp_state" "$(printf '%s' "$1" | tr '/' '_')"
}

# Refuse at once while an earlier probe of this device is still stuck: a
# second reader on a queueing map only adds another unkillable process.
bp_check_no_stuck_reader() {
  _bp_marker="$(bp_marker_for "$1")"
  [ -f "$_bp_marker" ] || return 0
  _bp_old="$(cat -- "$_bp_marker" 2>/dev/null || :)"
  case "$_bp_old" in
    '' | *[!0-9]*) ;;
    *)
      if kill -0 "$_bp_old" 2>/dev/null; then
        bp_fail "an earlier read of this device (pid $_bp_old) is still stuck; not starting another"
        return 1
      fi
      ;;
  esac
  rm -f -- "$_bp_marker"
}

bp_record_stuck_reader() {
  _bp_marker="$(bp_marker_for "$1")"
  mkdir -p -- "$(dirname -- "$_bp_marker")" 2>/dev/null || return 0
  printf '%s\n' "$2" >"$_bp_marker" 2>/dev/null || :
}

# bp_read_is_zero DEV OFFSET LENGTH WHAT
bp_read_is_zero() {
  _bp_dev="$1"
  _bp_off="$2"
  _bp_len="$3"
  _bp_what="$4"
  _bp_t="$(bp_timeout)"
  _bp_file="$BP_WORK/read-$_bp_off"
  # O_DIRECT so the page cache cannot answer for a device that no longer can.
  if bp_bounded "$_bp_t" "$_bp_file" dd if="$_bp_dev" bs="$BP_MIB" iflag=direct,skip_bytes,count_bytes skip="$_bp_off" count="$_bp_len" status=none; then
    :
  else
    bp_record_stuck_reader "$_bp_dev" "$BP_PID"
    bp_fail "direct read of the $_bp_what did not complete within ${_bp_t}s (paths down or I/O queueing?); reader pid $BP_PID left behind"
    return 1
  fi
  if [ "$BP_RC" != 0 ]; then
    bp_fail "direct read of the $_bp_what failed (dd exit $BP_RC: $(bp_first_line "$_bp_file.err"))"
    return 1
  fi
  _bp_got="$(wc -c <"$_bp_file" | tr -d ' ')"
  if [ "$_bp_got" != "$_bp_len" ]; then
    bp_fail "direct read of the $_bp_what returned $_bp_got of $_bp_len bytes"
    return 1
  fi
  if ! cmp -s -n "$_bp_len" -- "$_bp_file" /dev/zero; then
    bp_fail "the $_bp_what is not all zeros: the device holds data"
    return 1
  fi
}

# What the kernel knows a block device as, found by its major:minor through
# /sys/dev/block rather than by its name: a /dev/mapper/<map> node that
# libdevmapper made without udev is a plain block node, not a link to
# /dev/dm-N, so its name says nothing. Sets BP_SYS (its sysfs directory),
# BP_KNAME (dm-3, sdb, loop5), BP_DM_NAME and BP_DM_UUID (device-mapper
# only), each empty when unknown.
bp_sysfs_info() {
  BP_SYS=""
  BP_KNAME=""
  BP_DM_NAME=""
  BP_DM_UUID=""
  _bp_mm="$(stat -L -c '%t %T' -- "$1" 2>/dev/null)" || return 0
  [ -b "$1" ] || return 0
  _bp_maj="${_bp_mm% *}"
  _bp_min="${_bp_mm#* }"
  case "$_bp_maj$_bp_min" in
    '' | *[!0-9a-f]*) return 0 ;;
  esac
  _bp_link="/sys/dev/block/$((0x$_bp_maj)):$((0x$_bp_min))"
  [ -e "$_bp_link" ] || return 0
  BP_SYS="$(readlink -f -- "$_bp_link" 2>/dev/null || :)"
  [ -n "$BP_SYS" ] || return 0
  BP_KNAME="$(basename -- "$BP_SYS")"
  BP_DM_NAME="$(cat -- "$BP_SYS/dm/name" 2>/dev/null || :)"
  BP_DM_UUID="$(cat -- "$BP_SYS/dm/uuid" 2>/dev/null || :)"
}

bp_device_ids() {
  printf '%s\n' "$1"
  _bp_real="$(readlink -f -- "$1" 2>/dev/null || printf '%s' "$1")"
  printf '%s\n' "$_bp_real"
  bp_sysfs_info "$1"
  if [ -n "$BP_KNAME" ]; then
    printf '/dev/%s\n' "$BP_KNAME"
  fi
  if [ -n "$BP_DM_NAME" ]; then
    printf '/dev/mapper/%s\n' "$BP_DM_NAME"
    printf '%s\n' "$BP_DM_NAME"
  fi
  if [ -n "$BP_DM_UUID" ]; then
    printf '%s\n' "$BP_DM_UUID"
    case "$BP_DM_UUID" in
      mpath-*) printf '%s\n' "${BP_DM_UUID#mpath-}" ;;
    esac
  fi
  if [ -n "$BP_SYS" ] && [ -r "$BP_SYS/device/wwid" ]; then
    tr -d ' \n' <"$BP_SYS/device/wwid"
    printf '\n'
  fi
}

# Reads `dmsetup status` of a multipath target on stdin and prints the number
# of path groups in state A (active). The line is
#   start len multipath <#feat> feat.. <#hw> hw.. <#pg> <next pg>
#   then per group: <A|E|D> <#sel> sel.. <#paths> <#info> then per path
#   <maj:min> <A|F> <fail count> info..
# Path states are also "A", so the groups have to be walked, not grepped.
bp_count_active_groups() {
  awk '
    $3 == "multipath" {
      i = 4
      i += $i + 1          # features
      i += $i + 1          # hardware handler
      npg = $i; i += 2     # number of groups, next group
      active = 0
      for (g = 0; g < npg; g++) {
        if ($i == "A") active++
        i++
        i += $i + 1        # selector status
        npaths = $i; ninfo = $(i + 1); i += 2
        i += npaths * (3 + ninfo)
      }
      print active
      exit
    }
  '
}

bp_check_multipath_active() {
  _bp_name="$1"
  _bp_t="$(bp_timeout)"
  _bp_file="$BP_WORK/dm-status"
  if command -v dmsetup >/dev/null 2>&1; then
    if ! bp_bounded "$_bp_t" "$_bp_file" dmsetup status --target multipath "$_bp_name"; then
      bp_fail "dmsetup status of multipath map $_bp_name did not answer within ${_bp_t}s"
      return 1
    fi
    if [ "$BP_RC" != 0 ]; then
      bp_fail "dmsetup status of multipath map $_bp_name failed: $(bp_first_line "$_bp_file.err")"
      return 1
    fi
    _bp_active="$(bp_count_active_groups <"$_bp_file")"
    if [ -z "$_bp_active" ] || [ "$_bp_active" -lt 1 ]; then
      bp_fail "multipath map $_bp_name has no active path group ($(bp_first_line "$_bp_file"))"
      return 1
    fi
    return 0
  fi
  if command -v multipath >/dev/null 2>&1; then
    if ! bp_bounded "$_bp_t" "$_bp_file" multipath -ll "$_bp_name"; then
      bp_fail "multipath -ll $_bp_name did not answer within ${_bp_t}s"
      return 1
    fi
    if grep -q 'status=active' -- "$_bp_file"; then
      return 0
    fi
    bp_fail "multipath map $_bp_name has no path group with status=active"
    return 1
  fi
  bp_fail "multipath map $_bp_name: neither dmsetup nor multipath is available to prove a path group is active"
  return 1
}

bp_prove_blank() {
  _bp_dev="$1"
  # shellcheck disable=SC2034 # read by the scripts that source this file
  BP_REASON=""
  bp_need_tools dd cmp blkid wipefs blockdev readlink stat || return 1
  if [ ! -e "$_bp_dev" ]; then
    bp_fail "no such device"
    return 1
  fi
  if [ ! -b "$_bp_dev" ]; then
    bp_fail "not a block device"
    return 1
  fi
  bp_workdir || return 1
  # One name per device whatever node it was given by, so a stuck reader
  # found through /dev/mapper/<map> also counts for /dev/dm-N.
  bp_sysfs_info "$_bp_dev"
  _bp_real="$(readlink -f -- "$_bp_dev")"
  if [ -n "$BP_KNAME" ]; then
    _bp_real="/dev/$BP_KNAME"
  fi
  bp_check_no_stuck_reader "$_bp_real" || return 1
  _bp_t="$(bp_timeout)"

  if ! bp_bounded "$_bp_t" "$BP_WORK/size" blockdev --getsize64 "$_bp_dev"; then
    bp_fail "blockdev --getsize64 did not answer within ${_bp_t}s"
    return 1
  fi
  _bp_size="$(tr -d ' \n' <"$BP_WORK/size")"
  case "$BP_RC:$_bp_size" in
    0:[1-9]*) ;;
    0:*)
      bp_fail "device reports size ${_bp_size:-unknown} (detached loop device or no medium?)"
      return 1
      ;;
    *)
      bp_fail "cannot read the device size: $(bp_first_line "$BP_WORK/size.err")"
      return 1
      ;;
  esac

  _bp_head="$BP_MIB"
  [ "$_bp_size" -lt "$BP_MIB" ] && _bp_head="$_bp_size"
  bp_read_is_zero "$_bp_dev" 0 "$_bp_head" "first MiB" || return 1
  if [ "$_bp_size" -gt "$BP_MIB" ]; then
    bp_read_is_zero "$_bp_dev" "$((_bp_size - BP_MIB))" "$BP_MIB" "last MiB" || return 1
  fi
  # Only now is blkid's answer worth anything: the reads above completed.
  if ! bp_bounded "$_bp_t" "$BP_WORK/blkid" blkid -p -o export "$_bp_dev"; then
    bp_fail "blkid -p did not answer within ${_bp_t}s"
    return 1
  fi
  case "$BP_RC" in
    2)
      if [ -s "$BP_WORK/blkid" ]; then
        bp_fail "blkid -p exited 2 but printed output: $(bp_first_line "$BP_WORK/blkid")"
        return 1
      fi
      ;;
    0)
      bp_fail "blkid -p found a signature: $(tr '\n' ' ' <"$BP_WORK/blkid")"
      return 1
      ;;
    *)
      bp_fail "blkid -p failed (exit $BP_RC: $(bp_first_line "$BP_WORK/blkid.err"))"
      return 1
      ;;
  esac
  if ! bp_bounded "$_bp_t" "$BP_WORK/wipefs" wipefs -n -- "$_bp_dev"; then
    bp_fail "wipefs -n did not answer within ${_bp_t}s"
    return 1
  fi
  if [ "$BP_RC" != 0 ]; then
    bp_fail "wipefs -n failed (exit $BP_RC: $(bp_first_line "$BP_WORK/wipefs.err"))"
    return 1
  fi
  if [ -s "$BP_WORK/wipefs" ]; then
    bp_fail "wipefs -n lists signatures: $(bp_first_line "$BP_WORK/wipefs")"
    return 1
  fi
  # After the reads, not before: a fresh map shows every group "enabled" until
  # its first I/O promotes one. If a group is still not active after reads that
  # completed, the map is not in a state anyone should format. The map is
  # recognised by major:minor, so a node made without udev is checked too.
  bp_sysfs_info "$_bp_dev"
  case "$BP_DM_UUID" in
    mpath-*) bp_check_multipath_active "$BP_DM_NAME" || return 1 ;;
  esac
  return 0
}
