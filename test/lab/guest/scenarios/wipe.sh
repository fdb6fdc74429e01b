# shellcheck shell=sh source-path=SCRIPTDIR
# Scenarios 1 and 2: the wipe, and the guard that stops it.
#
# A LUN holds ext4 with a known file. multipathd assembles its map as on a
# node the volume just moved to: queue_if_no_path, every path group
# "enabled", none active. Every path fails. The CSI routine (csi-stage.sh)
# probes the map; its read queues. Queueing is switched off (what
# no_path_retry expiring or a flush does): the queued probe fails, blkid
# exits 2 with no output. Queueing is on again (multipathd restores it when
# paths return) before the routine formats, so the format's writes queue;
# the paths come back and they land.
#
# The order is held, not timed: queueing stays off until the probe has
# returned (a read it makes after queueing is back would queue again and,
# once the paths return, read the ext4 that is there: no wipe), and the
# routine waits between its probe and its decision (csi-stage.sh's lab hold)
# until queueing is back (a format that starts before would fail at once;
# a guard read would fail instead of hanging).
#
#   lab.wwn=WWN     the LUN
#   lab.guard=1     mkfs.ext4 on the routine's PATH is writ's mkfs guard,
#                   installed as the democratic-csi job installs it, with
#                   the LUN allow-listed (the worst case: someone listed it
#                   as new); otherwise it is the real mkfs.ext4.
# shellcheck source=../lab-lib.sh
. /lab/lab-lib.sh
set -u
wwn=$(lab_arg wwn)
guard=$(lab_arg guard)
timeout=$(lab_arg guard_timeout)

# The volume as the application left it: ext4 and a file of known content,
# written through one path before any map exists.
first=$(lab_disks_of_wwn "$wwn" | head -n 1)
mkfs.ext4 -q -F "/dev/$first"
mount "/dev/$first" /mnt
dd if=/dev/urandom of=/mnt/known.bin bs=64k count=16 2>/dev/null
sum=$(lab_sha256 /mnt/known.bin)
umount /mnt
sync
uuid=$(blkid -p -s UUID -o value "/dev/$first")
lab_result data_written file /known.bin sha256 "$sum" fs_uuid "$uuid"

lab_multipathd_start || { lab_result error message "multipathd did not start: $(tail -n 5 /tmp/multipathd.log)"; exit 1; }
map=$(lab_wait_map "$wwn") || { lab_result error message "multipathd assembled no map for $wwn: $(tail -n 5 /tmp/multipathd.log)"; exit 1; }
dev=/dev/mapper/$map
lab_result map_assembled map "$map" paths "$(lab_map_paths "$map" | tr '\n' ' ')" state "$(lab_map_state "$map")" table "$(dmsetup table "$map")"

lab_paths_fail "$map"
lab_result paths_failed state "$(lab_map_state "$map")"

stage_env="PATH=/usr/sbin:/usr/bin:/sbin:/bin"
if [ "$guard" = 1 ]; then
  # As jobs/democratic-csi-node.nomad.hcl: the guard bind-mounted as
  # /usr/local/sbin/mkfs.ext4 (first on PATH), its library under /opt/writ/lib.
  mkdir -p /usr/local/sbin /opt/writ/lib /etc/writ
  cp /opt/writ/scripts/mkfs-guard.sh /usr/local/sbin/mkfs.ext4
  cp /opt/writ/scripts/lib/blank-proof.sh /opt/writ/lib/blank-proof.sh
  chmod 0755 /usr/local/sbin/mkfs.ext4
  printf '%s\n' "3$wwn" >/etc/writ/mkfs-allow
  stage_env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin MKFS_GUARD_REAL_DIR=/usr/sbin MKFS_GUARD_LIB=/opt/writ/lib/blank-proof.sh MKFS_GUARD_ALLOW_LIST=/etc/writ/mkfs-allow BLANK_PROOF_TIMEOUT=$timeout BLANK_PROOF_STATE_DIR=/run/writ-blank-proof"
  lab_result guard_installed mkfs "/usr/local/sbin/mkfs.ext4" allow_list "$(cat /etc/writ/mkfs-allow)" timeout "$timeout"
fi

hold=/run/csi-stage.hold
mkfifo "$hold"
# shellcheck disable=SC2086 # the assignments are words on purpose
env $stage_env CSI_STAGE_HOLD="$hold" /bin/sh /lab/csi-stage.sh "$dev" &
stage=$!
if lab_wait_until 30 lab_proc_in_d blkid; then
  lab_result probe_queued state "$(lab_map_state "$map")"
else
  lab_result error message "the CSI probe never queued"
fi
# Queueing off until the probe has returned. Said again on every poll:
# multipathd (no_path_retry queue) may switch it back on while it handles
# the path events, and a probe read queued then would wait for the paths.
probe_returned_unqueued() {
  dmsetup message "$map" 0 fail_if_no_path
  [ -e "$hold.probed" ]
}
lab_wait_until 60 probe_returned_unqueued || lab_result error message "the CSI probe did not return with queueing off"
dmsetup message "$map" 0 queue_if_no_path
lab_result queueing_cycled state "$(lab_map_state "$map")"
# Only now may the routine decide: whatever it runs meets a queueing map.
# shellcheck disable=SC2016 # "$1" is the inner shell's, given the FIFO below
timeout 30 sh -c 'echo continue >"$1"' sh "$hold" || lab_result error message "the CSI routine was not waiting in its hold"

# Before the paths return: without the guard, until the format waits on the
# map (queued) or has given up; with it, until the guard has decided, which
# it must do within its timeout while the map still does not answer.
if [ "$guard" = 1 ]; then
  lab_wait_until $((timeout * 3 + 30)) sh -c "! kill -0 $stage" || :
else
  lab_wait_until 60 sh -c ". /lab/lab-lib.sh; lab_proc_in_d mkfs.ext4 || ! kill -0 $stage" || :
fi
lab_result before_paths_return format_waiting "$(lab_proc_in_d mkfs.ext4 && echo yes || echo no)" guard_reader_waiting "$(lab_proc_in_d dd && echo yes || echo no)" stage_running "$(kill -0 "$stage" 2>/dev/null && echo yes || echo no)" state "$(lab_map_state "$map")"
lab_paths_restore "$map"
lab_wait_until 30 sh -c "! kill -0 $stage" || lab_result error message "the CSI routine did not finish after the paths returned"
wait "$stage" 2>/dev/null
# A stuck guard read completes once the paths are back.
lab_wait_until 30 sh -c ". /lab/lab-lib.sh; ! lab_proc_in_d dd" || :
lab_result paths_restored state "$(lab_map_state "$map")"

# What is on the LUN now.
sync
echo 3 >/proc/sys/vm/drop_caches
after_uuid=$(blkid -p -s UUID -o value "$dev")
if mount "$dev" /mnt 2>/tmp/mount.err; then
  if [ -f /mnt/known.bin ]; then present=yes; else present=no; fi
  lab_result data_after file /known.bin present "$present" sha256 "$(lab_sha256 /mnt/known.bin)" fs_uuid "$after_uuid" entries "$(find /mnt -mindepth 1 -maxdepth 1 | sed 's|^/mnt/||' | sort | tr '\n' ' ')"
  umount /mnt
else
  lab_result data_after file /known.bin present unreadable fs_uuid "$after_uuid" mount_error "$(cat /tmp/mount.err)"
fi
lab_multipathd_stop
