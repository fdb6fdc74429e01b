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

# Stops the watchdog (SIGSTOP) right after a pass, when no pass is under
# way. A pass has begun once one of its topology queries (`multipathd show
# maps json`, then `multipath -ll`: children of the watchdog; the daemon is
# stopped by then) exists, even as a zombie, since a stopped process reaps
# nothing: then it is let go on and the gap after its next pass is tried.
watchdog_hold() {
  _wh_try=0
  while [ "$_wh_try" -lt 20 ]; do
    _wh_done=$(passes)
    lab_wait_until 60 sh -c "[ \$(grep -c '\"msg\":\"pass done' $log) -gt $_wh_done ]" || return 1
    kill -STOP "$wd"
    [ "$(lab_count_proc multipath)" = 0 ] && [ "$(lab_count_proc multipathd)" = 0 ] && return 0
    kill -CONT "$wd"
    _wh_try=$((_wh_try + 1))
  done
  return 1
}

# ---- part 1: kicked once, an active group appears
lab_wait_until 120 sh -c ". /lab/lab-lib.sh; lab_map_groups $map | grep -q A" || lab_result error message "no path group became active"
lab_wait_until 60 sh -c "grep -q '\"kicks\":\\[{' $log" || lab_result error message "no pass reported a kick"
after_kick=$(($(passes) + 2))
lab_wait_until 60 sh -c "[ \$(grep -c '\"msg\":\"pass done' $log) -ge $after_kick ]" || :
snapshot kicked

# ---- part 2: every path failed, queueing, no group selected
lab_multipathd_stop
# multipathd switches queueing off as it stops (queue_without_daemon no);
# on again first, as the table says, while a group is still active and the
# watchdog has no reason to kick.
dmsetup message "$map" 0 queue_if_no_path
for p in $(lab_map_paths "$map"); do
  dmsetup message "$map" 0 fail_path "$(cat "/sys/block/$p/dev")"
done
# The kernel keeps the group it last used "active" after its paths fail;
# drop the selection (switch_group clears it, as a read with no usable path
# does). From here the map is stuck, and queueing has been on all along: a
# kick meets a queueing map and hangs. (A failed read with queueing off,
# then queueing on again, left a window in which a kick failed at once.)
dmsetup message "$map" 0 switch_group 1
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

# The paths return while the watchdog is held still between two passes.
# A pass that read the topology before the reinstatement and decided after
# the hung read had exited would kick again on that stale reading; held,
# the next pass reads the map as the reinstatement left it.
if ! watchdog_hold; then
  lab_result error message "the watchdog could not be held between two passes"
fi
for p in $(lab_map_paths "$map"); do
  dmsetup message "$map" 0 reinstate_path "$(cat "/sys/block/$p/dev")"
done
# The queued read completes (it leaves a zombie: a stopped watchdog reaps nothing) and its group is active.
lab_wait_until 30 sh -c ". /lab/lab-lib.sh; [ \"\$(lab_count_proc dd D)\" = 0 ] && lab_map_groups $map | grep -q A" ||
  lab_result error message "the queued read did not complete after reinstating"
lab_result paths_reinstated state "$(lab_map_state "$map")"
kill -CONT "$wd"
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
