# shellcheck shell=sh
# lab-lib.sh — sourced by the guest's /init and scenarios.
#
# Results: lab_result EVENT [KEY VALUE]... prints one JSON object
# {"event":EVENT,"t":<uptime>,KEY:VALUE,...} (every value a string) on the
# lab channel, /dev/ttyS1, which the host test reads line by line.
# Waiting for the host: lab_wait NAME says {"event":"wait","for":NAME} and
# blocks until the host writes "continue NAME" back on the same channel.

LAB_CHANNEL=/dev/ttyS1

lab_channel_open() {
  # Raw and without echo: what the host writes must not come back as output.
  stty -F "$LAB_CHANNEL" raw -echo 2>/dev/null || :
}

lab_uptime() {
  cut -d' ' -f1 /proc/uptime
}

# Value of lab.NAME=VALUE on the kernel command line.
lab_arg() {
  tr ' ' '\n' </proc/cmdline | sed -n "s/^lab\.$1=//p" | tail -n 1
}

lab_json_string() {
  printf '%s' "$1" | awk 'BEGIN { ORS = "" }
    { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/[\001-\037]/, "")
      if (NR > 1) printf "\\n"
      printf "%s", $0 }'
}

lab_result() {
  _lr="{\"event\":\"$(lab_json_string "$1")\",\"t\":\"$(lab_uptime)\""
  shift
  while [ $# -ge 2 ]; do
    _lr="$_lr,\"$(lab_json_string "$1")\":\"$(lab_json_string "$2")\""
    shift 2
  done
  printf '%s}\n' "$_lr" >"$LAB_CHANNEL"
}

lab_wait() {
  lab_result wait for "$1"
  while IFS= read -r _lw_line <"$LAB_CHANNEL"; do
    _lw_line=$(printf '%s' "$_lw_line" | tr -d '\r')
    [ "$_lw_line" = "continue $1" ] && return 0
  done
  return 1
}

# Polls CMD... every 0.2 s until it succeeds or SECONDS pass (then 1).
lab_wait_until() {
  _wu_ticks=$(($1 * 5))
  shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$_wu_ticks" -le 0 ] && return 1
    _wu_ticks=$((_wu_ticks - 1))
    sleep 0.2
  done
}

# ---------------------------------------------------------------- disks and multipath

lab_count_disks() {
  _n=0
  for _d in /sys/class/block/sd*; do
    case "${_d##*/}" in *[0-9]) ;; sd*) [ -e "$_d" ] && _n=$((_n + 1)) ;; esac
  done
  printf '%s\n' "$_n"
}

# SCSI disks (sdX) whose WWID is naa.WWN: the paths to that LUN.
lab_disks_of_wwn() {
  for _d in /sys/block/sd*; do
    [ "$(cat "$_d/device/wwid" 2>/dev/null)" = "naa.$1" ] && printf '%s\n' "${_d##*/}"
  done
}

# No udevd runs in the guest: write the udev database entries that udevd's
# persistent-storage rules (scsi_id) write for each SCSI disk on a host, so
# multipath-tools sees the paths, their WWID and ID_WWN as it would there.
lab_udev_db() {
  mkdir -p /run/udev/data
  for _d in /sys/block/sd*; do
    _naa=$(sed 's/^naa\.//' "$_d/device/wwid")
    printf 'I:1\nE:ID_SERIAL=3%s\nE:ID_WWN=0x%s\nE:ID_BUS=scsi\nE:ID_TYPE=disk\nE:DEVTYPE=disk\n' "$_naa" "$_naa" >"/run/udev/data/b$(cat "$_d/dev")"
  done
}

# Starts multipathd in the foreground (as its systemd unit does) and waits
# until it answers on its socket.
lab_multipathd_start() {
  lab_udev_db
  multipathd -d -s >>/tmp/multipathd.log 2>&1 &
  printf '%s\n' "$!" >/run/lab-multipathd.pid
  lab_wait_until 30 multipathd show daemon
}

lab_multipathd_stop() {
  multipathd shutdown >/dev/null 2>&1
  lab_wait_until 20 lab_multipathd_gone
}

lab_multipathd_gone() {
  ! kill -0 "$(cat /run/lab-multipathd.pid)" 2>/dev/null
}

# Name of the multipath map of LUN WWN (dm uuid mpath-3<WWN>), if it exists.
lab_map_of_wwn() {
  for _m in $(dmsetup ls --target multipath 2>/dev/null | awk '{ print $1 }'); do
    [ "$(dmsetup info -c --noheadings -o uuid "$_m")" = "mpath-3$1" ] && printf '%s\n' "$_m" && return 0
  done
  return 1
}

# Waits up to 30 s for multipathd to assemble the map of WWN; prints its
# name. Without udevd nobody makes /dev/mapper/<map>: make the link udev's
# device-mapper rules make on a host (/dev/mapper/<map> -> ../dm-N).
lab_wait_map() {
  lab_wait_until 30 lab_map_of_wwn "$1" || return 1
  _wm=$(lab_map_of_wwn "$1")
  for _dm in /sys/block/dm-*; do
    [ "$(cat "$_dm/dm/name")" = "$_wm" ] && mkdir -p /dev/mapper && ln -sfn "../${_dm##*/}" "/dev/mapper/$_wm"
  done
  printf '%s\n' "$_wm"
}

# "status" of a multipath map as the kernel reports it, walked group by group:
#   groups=E,E paths=8:0:F,8:16:F queue=1
# (dmsetup status: <#feat> feat.. <#hw> hw.. <#pg> <next pg> then per group
# <A|E|D> <#sel> sel.. <#paths> <#info> then per path <maj:min> <A|F> <fails> info..)
lab_map_state() {
  _ms_queue=0
  dmsetup table "$1" | grep -q 'queue_if_no_path' && _ms_queue=1
  dmsetup status "$1" | awk -v q="$_ms_queue" '
    $3 == "multipath" {
      i = 4; i += $i + 1; i += $i + 1
      npg = $i; i += 2; g = ""; p = ""
      for (k = 0; k < npg; k++) {
        g = g (g == "" ? "" : ",") $i; i++
        i += $i + 1
        np = $i; ni = $(i + 1); i += 2
        for (j = 0; j < np; j++) { p = p (p == "" ? "" : ",") $i ":" $(i + 1); i += 3 + ni }
      }
      printf "groups=%s paths=%s queue=%s\n", g, p, q
    }'
}

lab_map_groups() {
  lab_map_state "$1" | sed 's/^groups=\([^ ]*\).*/\1/'
}

# Paths to the map as block device names (sda sdb).
lab_map_paths() {
  for _mm in $(dmsetup table "$1" | tr ' ' '\n' | grep -E '^[0-9]+:[0-9]+$'); do
    basename "$(readlink -f "/sys/dev/block/$_mm")"
  done
}

# Every path of the map fails, as when the SAN goes away: the SCSI devices go
# offline (multipathd's checker then sees them faulty too) and the kernel
# fails them in the map.
lab_paths_fail() {
  for _p in $(lab_map_paths "$1"); do
    echo offline >"/sys/block/$_p/device/state"
    dmsetup message "$1" 0 fail_path "$(cat "/sys/block/$_p/dev")"
  done
}

# The paths come back: devices running again, reinstated in the map.
lab_paths_restore() {
  for _p in $(lab_map_paths "$1"); do
    echo running >"/sys/block/$_p/device/state"
    dmsetup message "$1" 0 reinstate_path "$(cat "/sys/block/$_p/dev")"
  done
}

# Whether a process whose command name is NAME sleeps uninterruptibly (D).
lab_proc_in_d() {
  [ "$(lab_count_proc "$1" D)" -gt 0 ]
}

# Number of processes whose command name is NAME (in state STATE, e.g. D, if given).
lab_count_proc() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v n="($1)" -v s="${2:-}" '$2 == n && (s == "" || $3 == s) { c++ } END { print c + 0 }'
}

lab_sha256() {
  sha256sum "$1" 2>/dev/null | awk '{ print $1 }'
}

# The udev database entry udev's device-mapper rules write for a map on a
# host (name, uuid and what their blkid probe found), so that tools reading
# udev (lsblk) see the map as they would there. Probing reads the map: call
# it while the map is healthy, as udev does when the map appears.
lab_udev_db_map() {
  _dm=$(basename "$(readlink -f "/dev/mapper/$1")")
  {
    printf 'I:1\nE:DM_NAME=%s\nE:DM_UUID=%s\nE:DM_SUSPENDED=0\nE:MPATH_DEVICE_READY=1\n' "$1" "$(dmsetup info -c --noheadings -o uuid "$1")"
    blkid -p -o udev "/dev/mapper/$1" | sed 's/^/E:/'
  } >"/run/udev/data/b$(cat "/sys/block/$_dm/dev")"
}
