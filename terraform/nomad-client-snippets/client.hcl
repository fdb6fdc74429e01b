# Nomad CLIENT agent configuration the writ jobs need: merge into every
# client's agent config (e.g. /etc/nomad.d/client.hcl) and restart the client.
# These are agent settings; no job can set them.

client {
  # Caps every task's kill_timeout. Default "30s" would silently cut
  # democratic-csi-node (60s: let unstage/unmount finish) and
  # writ-node-runner (45s: 30 s run drain plus publishing results).
  max_kill_timeout = "60s"

  # The JetStream store of the NATS servers (jobs/nats.nomad.hcl). Only on the
  # clients that may run a NATS server; create the directory first.
  host_volume "writ-nats" {
    path      = "/var/lib/writ-nats"
    read_only = false
  }
}

# The node runner is a host agent (raw_exec, root). Enabling raw_exec here
# enables it for every namespace: the writ module allows it only in the writ
# namespace and sets disabled_task_drivers = ["raw_exec"] on the namespaces in
# raw_exec_denied_namespaces (terraform/README.md "The runner as a host agent").
plugin "raw_exec" {
  config {
    enabled = true
  }
}

plugin "docker" {
  config {
    # democratic-csi's node plugin and the multipath watchdog run privileged
    # (block devices and host mount namespaces), as democratic-csi documents.
    allow_privileged = true

    # Host bind mounts (/host, /run/udev, the mkfs guard, the watchdog's
    # textfile directory and NATS creds). Without this, every
    # `mount { type = "bind" }` from an absolute host path is refused.
    volumes {
      enabled = true
    }
  }
}
