# writ-node-runner.nomad.hcl — the runner on every Nomad client: it verifies
# signed writs from the control plane and runs the declared action.
#
#   nomad job run -var 'release_base_url=https://releases.example.internal/writ' \
#     -var writ_version=0.1.0 -var runner_sha256=<sha256> -var packs_sha256=<sha256> \
#     jobs/writ-node-runner.nomad.hcl
#
# Host access, and why each is needed (nothing else is mounted):
#   /dev/kmsg (read)              debugging.dmesg_tail
#   /var/run/docker.sock          docker.logs / inspect / ps (Docker Engine API)
#   /run/multipathd.socket        multipath.* actions (multipathd client)
#   <nomad data_dir>/client/csi   storage.csi_volume_ls, read-only
#   /var/lib/writ/node-runner     the runner's own journal (replay protection
#                                 must survive a new allocation)
#   NATS credentials file         per-node creds provisioned on the host (see
#                                 terraform/README.md "NATS authorization")
# The Docker socket is root-equivalent on the host; a socket proxy that only
# allows GET /containers/... is the next hardening step.
#
# The Nomad API is reached with a least-privilege ACL token (policy
# writ-node-runner: alloc-lifecycle + read-job, node write for drain and
# eligibility) read from the Nomad Variable nomad/jobs/writ-node-runner.
# Not workload identity: job-attached policies are not the place for node
# write rights, and one explicit token is easier to audit and rotate.

variable "datacenters" {
  description = "Datacenters whose clients get a runner."
  type        = list(string)
  default     = ["dc1"]
}

variable "node_pool" {
  description = "Node pool whose clients get a runner (\"all\" for every pool)."
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
  description = "SHA-256 of writ-node-runner-linux-x64 for this version; Nomad refuses a download that does not match."
  type        = string
}

variable "packs_sha256" {
  description = "SHA-256 of writ-packs-<version>.tar.gz; the same bytes the control plane loads."
  type        = string
}

variable "runner_image" {
  description = "Image that provides the userland the exec packs call (dmesg, df, cat, multipathd client). The runner executable itself comes from the release artifact."
  type        = string
  default     = "docker.io/library/debian:12-slim"
}

variable "nomad_data_dir" {
  description = "The Nomad client's data_dir; its client/csi subtree is mounted read-only for storage.csi_volume_ls."
  type        = string
  default     = "/opt/nomad/data"
}

variable "nats_creds_host_path" {
  description = "Path ON EACH HOST of this node's NATS credentials (user JWT named after the Nomad node id, plus seed)."
  type        = string
  default     = "/etc/writ/nats/node-runner.creds"
}

variable "nomad_api_port" {
  description = "Port of the local Nomad agent's HTTP API."
  type        = number
  default     = 4646
}

variable "nomad_api_scheme" {
  description = "Scheme of the local Nomad agent's HTTP API (https when the agent has TLS enabled)."
  type        = string
  default     = "http"
}

variable "metrics_port" {
  description = "Static host port for the runner's /metrics, /healthz and /readyz."
  type        = number
  default     = 9648
}

variable "log_level" {
  description = "Runner log level."
  type        = string
  default     = "info"
}

job "writ-node-runner" {
  type        = "system"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  group "runner" {
    network {
      port "metrics" {
        static = var.metrics_port
      }
    }

    service {
      name     = "writ-node-runner"
      provider = "nomad"
      port     = "metrics"

      check {
        type     = "http"
        path     = "/readyz"
        interval = "15s"
        timeout  = "2s"
      }
    }

    task "runner" {
      driver = "docker"

      artifact {
        source      = "${var.release_base_url}/v${var.writ_version}/writ-node-runner-linux-x64"
        destination = "local/bin/writ-node-runner"
        mode        = "file"
        options {
          checksum = "sha256:${var.runner_sha256}"
        }
      }

      artifact {
        source      = "${var.release_base_url}/v${var.writ_version}/writ-packs-${var.writ_version}.tar.gz"
        destination = "local/packs"
        options {
          checksum = "sha256:${var.packs_sha256}"
        }
      }

      config {
        image = var.runner_image
        ports = ["metrics"]
        # go-getter does not set the executable bit on a downloaded file
        # (hashicorp/nomad#2676), so the entrypoint sets it and then execs the
        # runner with the arguments as given; no shell parses them.
        entrypoint = ["/bin/sh", "-c", "chmod 0755 \"$0\" && exec \"$0\" \"$@\""]
        command    = "/local/bin/writ-node-runner"
        args = [
          "run",
          "--packs", "/local/packs",
          "--trusted-keys", "/secrets/trusted-keys.pem",
          "--nats-creds", "/etc/writ/nats/node-runner.creds",
          "--journal", "/var/lib/writ/runner-journal.jsonl",
          "--docker-socket", "/var/run/docker.sock",
          "--metrics-listen", "0.0.0.0:${NOMAD_PORT_metrics}",
          "--log-level", var.log_level,
        ]

        cap_drop = ["all"]
        # Reading /dev/kmsg needs CAP_SYSLOG when kernel.dmesg_restrict=1;
        # the client's docker plugin must list it in allow_caps.
        cap_add = ["syslog"]

        devices = [
          {
            host_path          = "/dev/kmsg"
            container_path     = "/dev/kmsg"
            cgroup_permissions = "r"
          },
        ]

        mount {
          type     = "bind"
          source   = "/var/run/docker.sock"
          target   = "/var/run/docker.sock"
          readonly = false
        }

        mount {
          type     = "bind"
          source   = "/run/multipathd.socket"
          target   = "/run/multipathd.socket"
          readonly = false
        }

        # Same path inside as outside: the stock pack storage.csi_volume_ls
        # declares its root as <data_dir>/client/csi.
        mount {
          type     = "bind"
          source   = "${var.nomad_data_dir}/client/csi"
          target   = "${var.nomad_data_dir}/client/csi"
          readonly = true
          bind_options {
            propagation = "rslave"
          }
        }

        mount {
          type     = "bind"
          source   = "/var/lib/writ/node-runner"
          target   = "/var/lib/writ"
          readonly = false
        }

        mount {
          type     = "bind"
          source   = var.nats_creds_host_path
          target   = "/etc/writ/nats/node-runner.creds"
          readonly = true
        }
      }

      env {
        # The node id is the NATS subject token the runner's credentials are
        # scoped to; it must be Nomad's, not a hostname guess.
        NODE_ID        = node.unique.id
        NODE_NAME      = node.unique.name
        WRIT_NODE_NAME = node.unique.name
        NOMAD_ADDR     = "${var.nomad_api_scheme}://${attr.unique.network.ip-address}:${var.nomad_api_port}"
        # The runner's low-memory profile: a 1 MiB young generation and no JIT
        # keep an idle runner under 60 MiB RSS (npm run bench -- runner-rss);
        # its work is I/O and native crypto, so the interpreter costs little.
        NODE_OPTIONS = "--max-semi-space-size=1 --jitless"
      }

      template {
        destination = "local/nats.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          WRIT_NATS_URL={{ range $i, $s := nomadService "writ-nats" }}{{ if $i }},{{ end }}nats://{{ $s.Address }}:{{ $s.Port }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/nomad.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}
          NOMAD_TOKEN={{ .nomad_token }}
          {{- end }}
        EOT
      }

      # The control plane's public keys (a list, for rotation). Not secret, but
      # whoever can change them can command every node: same ACL as secrets.
      template {
        destination = "secrets/trusted-keys.pem"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ .trusted_keys_pem }}{{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }

      # The runner drains in-flight runs for up to 30 s on SIGTERM (its
      # drain-timeout default) and then publishes their results. 45 s leaves
      # room for that; the client's max_kill_timeout (default 30s) must be
      # raised to at least 45s or Nomad silently caps this
      # (terraform/nomad-client-snippets/client.hcl).
      kill_signal  = "SIGTERM"
      kill_timeout = "45s"
    }
  }
}
