# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario 5: the stock packs on a real host. The runner's release
# executable runs as jobs/writ-node-runner.nomad.hcl starts it (the host
# test reads the job and writes /lab/host-agent.sh: same command line, same
# environment, files where the job's artifacts and templates put them),
# connected through QEMU's user-mode network to the NATS server and control
# plane the test runs on its own loopback. The test sends real writs while
# the map is healthy, then while it is stuck: no group active, every path
# failed, I/O queueing — the state of the incident. The runner's HTTP
# actions reach the API doubles on the host through the sockets the job
# names (the Task API socket in the task's secrets dir, the Docker socket):
# socat listens on each and forwards to the host (/lab/api-forwards, one
# "SOCKET HOST:PORT" a line, written by the test), as Nomad and Docker
# would be listening there before the task starts.
#
#   lab.wwn=WWN
# shellcheck source=../lab-lib.sh
. /lab/lab-lib.sh
set -u
wwn=$(lab_arg wwn)

# The volume an allocation uses: ext4, labelled, mounted.
first=$(lab_disks_of_wwn "$wwn" | head -n 1)
mkfs.ext4 -q -F -L labvol "/dev/$first"
lab_multipathd_start || { lab_result error message "multipathd did not start"; exit 1; }
map=$(lab_wait_map "$wwn") || { lab_result error message "multipathd assembled no map for $wwn"; exit 1; }
dev=/dev/mapper/$map
lab_udev_db_map "$map"
mkdir -p /mnt/data
mount "$dev" /mnt/data
lab_result healthy map "$map" dm "$(basename "$(readlink -f "$dev")")" state "$(lab_map_state "$map")" \
  paths "$(lab_map_paths "$map" | tr '\n' ' ')" fs_uuid "$(blkid -p -s UUID -o value "$dev")" size "$(blockdev --getsize64 "$dev")"

forwarders=""
while read -r sock target; do
  mkdir -p "$(dirname "$sock")"
  socat "UNIX-LISTEN:$sock,fork,unlink-early,mode=0600" "TCP:$target" </dev/null >>/tmp/socat.log 2>&1 &
  forwarders="$forwarders $!"
  lab_wait_until 10 test -S "$sock" || lab_result error message "socat is not listening on $sock: $(tail -n 3 /tmp/socat.log)"
done </lab/api-forwards
lab_result apis_forwarded forwards "$(cat /lab/api-forwards)"

/bin/sh /lab/host-agent.sh >/tmp/runner.log 2>&1 &
agent=$!
lab_result agent_started pid "$agent" launcher "$(cat /lab/host-agent.sh)"

lab_wait healthy

# Stuck: every path fails, and the kernel is left with no group selected
# (switch_group drops the selection, as a read with no usable path does).
# Queueing stays on throughout: with it off for a moment, a write the
# mounted ext4 makes then (journal, lazy inode-table init) would fail
# instead of queueing, and the kernel log the actions read would depend on
# timing.
sync
lab_paths_fail "$map"
dmsetup message "$map" 0 switch_group 1
lab_result stuck state "$(lab_map_state "$map")"

lab_wait stuck

lab_paths_restore "$map"
lab_wait_until 30 sh -c ". /lab/lab-lib.sh; [ \"\$(lab_count_proc blkid D)\" = 0 ]" || lab_result error message "a blkid stayed stuck after the paths returned"
umount /mnt/data
lab_result restored state "$(lab_map_state "$map")"
# Whether the runner lived through everything the test sent it, HTTP actions included.
lab_result agent_before_stop alive "$(kill -0 "$agent" 2>/dev/null && echo yes || echo no)"
kill -TERM "$agent"
lab_wait_until 60 sh -c "! kill -0 $agent" || lab_result error message "the runner did not stop on SIGTERM"
wait "$agent"
lab_result agent_stopped rc "$?" log_tail "$(tail -n 15 /tmp/runner.log)"
# shellcheck disable=SC2086 # one pid a word
kill $forwarders 2>/dev/null
lab_multipathd_stop
