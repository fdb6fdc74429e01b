# multipath-watchdog.nomad.hcl — on every client, every 30 s: finds multipath
# maps whose path groups are all "enabled" with none active, kicks each with a
# 4 KiB O_DIRECT read in a child it never waits on, and reports
# writ_multipath_* metrics (HTTP and a node_exporter textfile) plus events
# into NATS. Alerts: terraform/alerts/multipath.yaml.
#
#   nomad job run -var 'release_base_url=https://releases.example.internal/writ' \
#     -var writ_version=0.1.0 -var runner_sha256=<sha256> \
#     -var "host_tool_script=$(cat jobs/scripts/host-tool.sh)" \
#     -var "nats_ca_pem=$(cat nats-ca.pem)" \
#     jobs/multipath-watchdog.nomad.hcl
#
# Host access, and why:
#   privileged             open any dm block device for the kick read; maps
#                          appear after start, so no fixed device list works
#   host root at /host, ro the HOST's multipath, multipathd and dmsetup run
#                          through chroot (jobs/scripts/host-tool.sh), and
#                          /host/dev/mapper is the live device directory (a
#                          privileged container's own /dev is a snapshot)
#   host network           multipathd listens on /run/multipathd.socket
#                          (multipath-tools 0.12+, reached through the chroot
#                          as /host/run is the host's /run) or only on the
#                          abstract socket @/org/kernel/linux/storage/multipathd
#                          (Debian 12's 0.9.4), which exists only in the host's
#                          network namespace. Nothing binds the socket path,
#                          so a node without multipathd still runs the task
#                          (the watchdog then reads `multipath -ll`).
#   textfile directory     node_exporter's textfile collector picks up
#                          writ_multipath.prom from here; created if missing

variable "namespace" {
  description = "Nomad namespace of the writ jobs (terraform: nomad_namespace.writ); service discovery and Nomad Variables are per namespace, so every writ job shares it."
  type        = string
  default     = "writ"
}

variable "datacenters" {
  description = "Datacenters whose clients get the watchdog."
  type        = list(string)
  default     = ["dc1"]
}

variable "node_pool" {
  description = "Node pool whose clients get the watchdog (the ones with multipath storage)."
  type        = string
  default     = "all"
}

variable "release_base_url" {
  description = "Base URL of the writ release artifacts; files are fetched from <base>/v<version>/<name>."
  type        = string
}

variable "writ_version" {
  description = "writ release version (without the leading v)."
  type        = string
}

variable "runner_sha256" {
  description = "SHA-256 of writ-node-runner-linux-x64 (the watchdog is a subcommand of the runner executable)."
  type        = string
}

variable "image" {
  description = "Base image: needs /bin/sh, chroot and env; the tools themselves are the host's."
  type        = string
  default     = "docker.io/library/debian:12-slim"
}

variable "host_tool_script" {
  description = "Contents of jobs/scripts/host-tool.sh (terraform passes file())."
  type        = string
}

variable "interval" {
  description = "How often the watchdog checks every map."
  type        = string
  default     = "30s"
}

variable "kick_timeout" {
  description = "How long a kick read may take before it counts as failed (the read is abandoned, never waited on)."
  type        = string
  default     = "10s"
}

variable "metrics_port" {
  description = "Static host port for the watchdog's /metrics."
  type        = number
  default     = 9649
}

variable "textfile_dir" {
  description = "Host directory read by node_exporter --collector.textfile.directory."
  type        = string
  default     = "/var/lib/node_exporter/textfile_collector"
}

variable "nats_ca_pem" {
  description = "PEM CA certificate of the NATS cluster (public): NATS is TLS only, and the watchdog verifies the servers against it."
  type        = string
}

variable "nats_tls_server_name" {
  description = "DNS name on the NATS servers' certificate; the servers are reached by IP (Nomad service discovery), so the certificate is verified against this name."
  type        = string
  default     = "writ-nats"
}

variable "nats_creds_host_path" {
  description = "Path ON EACH HOST of this node's NATS credentials (the same per-node creds the runner uses)."
  type        = string
  default     = "/etc/writ/nats/node-runner.creds"
}

job "multipath-watchdog" {
  namespace   = var.namespace
  type        = "system"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  group "watchdog" {
    network {
      port "metrics" {
        static = var.metrics_port
      }
    }

    service {
      name     = "writ-multipath-watchdog"
      provider = "nomad"
      port     = "metrics"
      tags     = ["metrics"]

      check {
        type     = "http"
        path     = "/metrics"
        interval = "30s"
        timeout  = "3s"
      }
    }

    task "watchdog" {
      driver = "docker"

      artifact {
        source      = "${var.release_base_url}/v${var.writ_version}/writ-node-runner-linux-x64"
        destination = "local/bin/writ-node-runner"
        mode        = "file"
        options {
          checksum = "sha256:${var.runner_sha256}"
        }
      }

      config {
        image        = var.image
        privileged   = true
        network_mode = "host"
        # go-getter does not set the executable bit (hashicorp/nomad#2676).
        entrypoint = ["/bin/sh", "-c", "chmod 0755 \"$0\" && exec \"$0\" \"$@\""]
        command    = "/local/bin/writ-node-runner"
        args = [
          "watchdog", "multipath",
          "--interval", var.interval,
          "--kick-timeout", var.kick_timeout,
          "--metrics-listen", "${NOMAD_IP_metrics}:${NOMAD_PORT_metrics}",
          "--textfile-dir", "/textfile",
          "--device-dir", "/host/dev/mapper",
          # WRIT_NATS_URL comes from the nats.env template below; template
          # env values are interpolated into the task config.
          "--nats-url", "${WRIT_NATS_URL}",
          "--nats-creds", "/etc/writ/nats/node-runner.creds",
          "--nats-ca", "/local/nats-ca.pem",
          "--nats-tls-server-name", var.nats_tls_server_name,
          "--node-id", "${node.unique.id}",
          "--node-name", "${node.unique.name}",
        ]

        mount {
          type     = "bind"
          source   = "/"
          target   = "/host"
          readonly = true
          bind_options {
            propagation = "rslave"
          }
        }

        # A `volumes` bind (docker -v) creates a missing source directory; a
        # `mount` would fail the task on a client without node_exporter.
        volumes = ["${var.textfile_dir}:/textfile"]

        mount {
          type     = "bind"
          source   = var.nats_creds_host_path
          target   = "/etc/writ/nats/node-runner.creds"
          readonly = true
        }

        mount {
          type     = "bind"
          source   = "local/host-tool.sh"
          target   = "/usr/local/sbin/multipath"
          readonly = true
        }

        mount {
          type     = "bind"
          source   = "local/host-tool.sh"
          target   = "/usr/local/sbin/multipathd"
          readonly = true
        }

        mount {
          type     = "bind"
          source   = "local/host-tool.sh"
          target   = "/usr/local/sbin/dmsetup"
          readonly = true
        }
      }

      env {
        PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
      }

      template {
        destination     = "local/nats-ca.pem"
        change_mode     = "restart"
        data            = var.nats_ca_pem
        left_delimiter  = "[[writ-no-template["
        right_delimiter = "]]writ-no-template]"
      }

      template {
        destination     = "local/host-tool.sh"
        perms           = "0755"
        change_mode     = "restart"
        data            = var.host_tool_script
        left_delimiter  = "[[writ-no-template["
        right_delimiter = "]]writ-no-template]"
      }

      # The NATS servers at start. Clients learn the cluster's other servers
      # from each server's INFO (connect_urls), so a changed list needs no
      # restart: noop. ("restart" restarted every instance of this job at
      # once, within the splay, on any NATS allocation change, whatever the
      # update block says.)
      template {
        destination = "local/nats.env"
        env         = true
        change_mode = "noop"
        data        = <<-EOT
          WRIT_NATS_URL={{ range $i, $s := nomadService "writ-nats" }}{{ if $i }},{{ end }}nats://{{ $s.Address }}:{{ $s.Port }}{{ end }}
        EOT
      }

      # The one list change a client cannot learn by itself: from no server
      # (started before any NATS server was registered) to some. The text is
      # the same for any non-empty list, so a moved server restarts nothing.
      template {
        destination = "local/nats-registered"
        change_mode = "restart"
        data        = <<-EOT
          {{- if nomadService "writ-nats" }}registered{{ end }}
        EOT
      }

      resources {
        cpu    = 100
        memory = 128
      }

      # A kick stuck in D state cannot be killed; the watchdog does not wait
      # for it at shutdown either, so a short grace is enough.
      kill_timeout = "10s"
    }
  }
}
