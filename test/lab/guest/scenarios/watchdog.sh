# shellcheck shell=sh source-path=SCRIPTDIR
# Scenario 3: writ's multipath watchdog (the runner's release executable,
# `writ-node-runner watchdog multipath`) on a real map.
#
# Part 1: multipathd assembles the map and nothing reads it, so every path
# group is "enabled" and none active while both paths are ready. The
# watchdog must kick it once; the kernel then shows an active group.
# Part 2: multipathd is stopped (so its checker cannot reinstate what the
# kernel failed; the watchdog reads `multipath -ll` instead), every path is
# failed in the kernel while the devices still answer the path checker, and
# the map queues I/O with no group selected. The kick must hang and be
# reported, no second read may start, the passes must go on; once the paths
# are reinstated the queued read completes and the watchdog reports recovery.
#
#   lab.wwn=WWN
# shellcheck source=../lab-lib.sh
. /lab/lab-lib.sh
set -u
wwn=$(lab_arg wwn)
runner=/opt/writ/bin/writ-node-runner
metrics=http://127.0.0.1:9649/metrics
textfile_dir=/var/lib/node_exporter/textfile_collector
log=/tmp/watchdog.log

lab_multipathd_start || { lab_result error message "multipathd did not start"; exit 1; }
map=$(lab_wait_map "$wwn") || { lab_result error message "multipathd assembled no map for $wwn"; exit 1; }
dev=/dev/mapper/$map
lab_result map_assembled map "$map" state "$(lab_map_state "$map")"

mkdir -p "$textfile_dir"
"$runner" watchdog multipath --interval 2s --kick-timeout 5s --metrics-listen 127.0.0.1:9649 \
  --textfile-dir "$textfile_dir" --device-dir /dev/mapper --node-id lab-node --node-name lab-node >"$log" 2>&1 &
wd=$!
lab_result watchdog_started pid "$wd"

logged() { grep -c -F "\"msg\":\"$1" "$log" 2>/dev/null || :; }
passes() { logged 'pass done'; }
snapshot() { # NAME: the kernel's view and the watchdog's metrics, at this moment
  lab_result "$1" state "$(lab_map_state "$map")" passes "$(passes)" \
    metrics "$(wget -q -O - "$metrics" 2>/dev/null | grep '^writ_multipath')" \
    textfile "$(grep '^writ_multipath' "$textfile_dir/writ_multipath.prom" 2>/dev/null)"
}

# ---- part 1: kicked once, an active group appears
lab_wait_until 120 sh -c ". /lab/lab-lib.sh; lab_map_groups $map | grep -q A" || lab_result error message "no path group became active"
lab_wait_until 60 sh -c "grep -q '\"kicks\":\\[{' $log" || lab_result error message "no pass reported a kick"
after_kick=$(($(passes) + 2))
lab_wait_until 60 sh -c "[ \$(grep -c '\"msg\":\"pass done' $log) -ge $after_kick ]" || :
snapshot kicked

# ---- part 2: every path failed, queueing, no group selected
lab_multipathd_stop
for p in $(lab_map_paths "$map"); do
  dmsetup message "$map" 0 fail_path "$(cat "/sys/block/$p/dev")"
done
# One read with queueing off fails at once and leaves the kernel with no
# group selected; then queueing is on again, as the table says.
dmsetup message "$map" 0 fail_if_no_path
dd if="$dev" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null
dmsetup message "$map" 0 queue_if_no_path
lab_result paths_failed state "$(lab_map_state "$map")" multipathd running_no

# The pass that started the kick reports it as hung (its line follows the kick's own).
lab_wait_until 90 sh -c "grep -q '\"outcome\":\"hung\"' $log" || lab_result error message "no hung kick reported"
hung_at=$(passes)
# While the read hangs: at most one reader, and the passes keep coming.
max_readers=0
i=0
while [ "$(passes)" -lt $((hung_at + 3)) ] && [ $i -lt 300 ]; do
  n=$(lab_count_proc dd)
  [ "$n" -gt "$max_readers" ] && max_readers=$n
  sleep 0.2
  i=$((i + 1))
done
lab_result while_hung passes_since "$(($(passes) - hung_at))" max_kick_readers "$max_readers" readers_in_d "$(lab_count_proc dd D)"
snapshot hung

for p in $(lab_map_paths "$map"); do
  dmsetup message "$map" 0 reinstate_path "$(cat "/sys/block/$p/dev")"
done
lab_result paths_reinstated state "$(lab_map_state "$map")"
lab_wait_until 60 sh -c "grep -q 'hung kick read finally exited' $log" || lab_result error message "the hung read never exited"
lab_wait_until 60 sh -c "grep -q 'map is no longer stuck' $log" || lab_result error message "no recovery reported"
released=$(passes)
lab_wait_until 30 sh -c "[ \$(grep -c '\"msg\":\"pass done' $log) -gt $released ]" || :
snapshot recovered

kill -TERM "$wd"
lab_wait_until 30 sh -c "! kill -0 $wd" || lab_result error message "the watchdog did not stop on SIGTERM"
wait "$wd"
lab_result watchdog_stopped rc "$?"
# The watchdog's own JSON log, line by line, for the host to read.
while IFS= read -r line; do
  lab_result watchdog_log line "$line"
done <"$log"
