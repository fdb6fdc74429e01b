# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario 4: jobs/scripts/format-new-volume.sh on a real multipath map.
#
# A genuinely blank LUN, its map assembled by multipathd. First with every
# path failed and I/O queueing: the tool must refuse within its timeout and
# write nothing. Then with the paths back: it proves the LUN blank and puts
# xfs on it. Then once more: the LUN is no longer blank, so it refuses.
#
#   lab.wwn=WWN  lab.timeout=SECONDS (BLANK_PROOF_TIMEOUT)
# shellcheck source=../lab-lib.sh
. /lab/lab-lib.sh
set -u
wwn=$(lab_arg wwn)
timeout=$(lab_arg timeout)
tool=/opt/writ/scripts/format-new-volume.sh
export BLANK_PROOF_TIMEOUT="$timeout" BLANK_PROOF_STATE_DIR=/run/writ-blank-proof

lab_multipathd_start || { lab_result error message "multipathd did not start"; exit 1; }
map=$(lab_wait_map "$wwn") || { lab_result error message "multipathd assembled no map for $wwn"; exit 1; }
dev=/dev/mapper/$map
lab_result map_assembled map "$map" state "$(lab_map_state "$map")" size "$(blockdev --getsize64 "$dev")"

# run NAME ARGS...: runs the tool, reports its exit code, output and time taken.
run() {
  _name=$1
  shift
  _t0=$(lab_uptime)
  "$tool" "$@" >/tmp/fnv.out 2>/tmp/fnv.err
  _rc=$?
  lab_result "$_name" rc "$_rc" started "$_t0" ended "$(lab_uptime)" stdout "$(cat /tmp/fnv.out)" stderr "$(cat /tmp/fnv.err)" state "$(lab_map_state "$map")"
}

lab_paths_fail "$map"
lab_result paths_failed state "$(lab_map_state "$map")"
run format_while_queueing -L labdata "$dev"
lab_result reader_left readers_in_d "$(lab_count_proc dd D)"

lab_paths_restore "$map"
# The read the tool left behind completes once a path is back.
# shellcheck disable=SC2016 # expanded by the inner shell, each time it polls
lab_wait_until 30 sh -c '. /lab/lab-lib.sh; [ "$(lab_count_proc dd)" = 0 ]' || lab_result error message "the abandoned read did not finish"
sync
echo 3 >/proc/sys/vm/drop_caches
first=$(dd if="$dev" bs=1M count=1 iflag=direct 2>/dev/null | tr -d '\0' | wc -c)
lab_result paths_restored state "$(lab_map_state "$map")" nonzero_bytes_in_first_mib "$first" blkid "$(blkid -p -o export "$dev"; echo "rc=$?")"

run format_blank -L labdata "$dev"
lab_result formatted type "$(blkid -p -s TYPE -o value "$dev")" uuid "$(blkid -p -s UUID -o value "$dev")" label "$(blkid -p -s LABEL -o value "$dev")"

run format_again "$dev"
lab_result after_second type "$(blkid -p -s TYPE -o value "$dev")" uuid "$(blkid -p -s UUID -o value "$dev")"
if mount -t xfs "$dev" /mnt 2>/tmp/mount.err; then
  lab_result mounted fs "$(awk -v m=/mnt '$2 == m { print $3 }' /proc/mounts)"
  umount /mnt
else
  lab_result mounted fs none error "$(cat /tmp/mount.err)"
fi
lab_multipathd_stop
