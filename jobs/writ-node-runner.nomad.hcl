# writ-node-runner.nomad.hcl — the runner on every Nomad client: it verifies
# signed writs from the control plane and runs the declared action against
# this host's own tools and devices.
#
#   nomad job run -var 'release_base_url=https://releases.example.internal/writ' \
#     -var writ_version=0.1.0 -var runner_sha256=<sha256> -var packs_sha256=<sha256> \
#     jobs/writ-node-runner.nomad.hcl
#
# A host agent, not a container: raw_exec, as root, in the host's mount,
# network and PID namespaces. The stock actions are the host's own multipath,
# multipathd (unix or abstract socket), iscsiadm, journalctl, dmesg, blkid,
# lsblk and df, the Docker socket and Nomad's CSI directory; a container would
# need every one of them passed in, and privileged to reach block devices that
# appear after it started. raw_exec is off by default on a client and is
# confined to the `writ` namespace (namespace capabilities); the trade-off and
# what a compromised runner could do are in terraform/README.md ("The runner
# as a host agent").
#
# Nomad API: the allocation's workload identity (NOMAD_TOKEN) over the Task
# API socket in its secrets dir; the policy attached to this job
# (terraform: nomad_acl_policy.node_runner) gives it read-job and
# alloc-lifecycle in the managed namespaces and node write. The runner itself
# refuses node_* calls for any node but its own and alloc_* calls for
# allocations on other nodes.
#
# The argv is config { command, args } and the environment is env {}, nothing
# hidden in a wrapper: test/lab runs the runner in a VM from exactly these.

variable "namespace" {
  description = "Nomad namespace of the writ jobs; the only one whose capabilities enable raw_exec (terraform: nomad_namespace.writ)."
  type        = string
  default     = "writ"
}

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

variable "nats_creds_host_path" {
  description = "Path ON EACH HOST of this node's NATS credentials (user JWT named after the Nomad node id, plus seed), mode 0400 root."
  type        = string
  default     = "/etc/writ/nats/node-runner.creds"
}

variable "journal_path" {
  description = "Path ON EACH HOST of the runner's journal; on the host, not in the allocation, so replay protection survives a new allocation."
  type        = string
  default     = "/var/lib/writ/node-runner/runner-journal.jsonl"
}

variable "docker_socket" {
  description = "Path ON EACH HOST of the Docker Engine API socket the docker.* actions call."
  type        = string
  default     = "/var/run/docker.sock"
}

variable "nomad_data_dir" {
  description = "The Nomad clients' data_dir: list roots under {{ runner.nomad_data_dir }} (storage.csi_volume_ls lists its client/csi) resolve against it on each host."
  type        = string
  default     = "/opt/nomad/data"
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
  namespace   = var.namespace
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
      # No `user`: the stock actions need root (CAP_SYSLOG for dmesg,
      # CAP_SYS_ADMIN for multipath's device-mapper ioctls, read access to
      # every block device for blkid, the Docker socket).
      driver = "raw_exec"

      # The workload identity as NOMAD_TOKEN, used on the Task API socket. It
      # is this allocation's own and stops working when the allocation stops.
      identity {
        env  = true
        file = false
      }

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

      # The executor marks the downloaded file executable before it starts it
      # (go-getter does not: hashicorp/nomad#2676), so no wrapper is needed.
      config {
        command = "local/bin/writ-node-runner"
        args = [
          "run",
          "--packs", "${NOMAD_TASK_DIR}/packs",
          "--trusted-keys", "${NOMAD_SECRETS_DIR}/trusted-keys.pem",
          "--nats-creds", var.nats_creds_host_path,
          "--journal", var.journal_path,
          "--nomad-data-dir", var.nomad_data_dir,
          "--docker-socket", var.docker_socket,
          "--metrics-listen", "${NOMAD_IP_metrics}:${NOMAD_PORT_metrics}",
          "--log-level", var.log_level,
        ]
      }

      env {
        # The node id is the NATS subject token the runner's credentials are
        # scoped to, and the id the runner's locality checks compare with; it
        # must be Nomad's, not a hostname guess.
        NODE_ID        = node.unique.id
        NODE_NAME      = node.unique.name
        WRIT_NODE_NAME = node.unique.name
        # The Task API: the local agent's HTTP API on a socket in this task's
        # secrets dir, no TLS to configure, and it always wants the token.
        NOMAD_ADDR = "unix://${NOMAD_SECRETS_DIR}/api.sock"
        # raw_exec hands the task the Nomad agent's own environment, and the
        # packaged agent unit loads /etc/nomad.d/nomad.env, where clusters
        # keep these for the CLI. The socket takes no TLS: cleared here, so
        # an agent's settings never reach the runner (empty means unset).
        NOMAD_CACERT          = ""
        NOMAD_CLIENT_CERT     = ""
        NOMAD_CLIENT_KEY      = ""
        NOMAD_TLS_SERVER_NAME = ""
        # The runner's low-memory profile: a 1 MiB young generation and no JIT
        # keep it near 60 MiB RSS with every executor kind used (npm run
        # bench -- runner-rss); its work is I/O and native crypto, so the
        # interpreter costs little. --jitless also removes WebAssembly: the
        # runner's HTTP clients are node:http (a native parser) for that
        # reason, and test/runner-job-environment.test.ts runs every kind
        # of action under exactly this environment.
        NODE_OPTIONS = "--max-semi-space-size=1 --jitless"
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

      # NATS over TLS: the cluster's CA and the name on the servers'
      # certificate (they are reached by IP), when the variable holds them
      # (terraform always writes them; terraform/README.md "NATS over TLS").
      template {
        destination = "secrets/nats-tls.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ if .nats_ca_pem.Value }}
          WRIT_NATS_CA={{ env "NOMAD_SECRETS_DIR" }}/nats-ca.pem
          WRIT_NATS_TLS_SERVER_NAME={{ .nats_tls_server_name.Value }}
          {{- end }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/nats-ca.pem"
        perms       = "0444"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ .nats_ca_pem.Value }}{{ end }}
        EOT
      }

      # The control plane's public keys (a list, for rotation). Not secret, but
      # whoever can change them can command every node: same ACL as secrets.
      # Rendered as root, read by root (raw_exec runs the task as root).
      template {
        destination = "secrets/trusted-keys.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ .trusted_keys_pem }}{{ end }}
        EOT
      }

      # Passkey-signed approvals, when the variable holds an approver registry
      # (terraform/README.md "Passkey approvals"). The registry file is
      # re-rendered when a new one is published and the runner reloads it by
      # itself (change_mode noop); switching the feature on or off restarts.
      template {
        destination = "secrets/approvers.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ if .approver_registry.Value }}
          WRIT_APPROVERS_REGISTRY={{ env "NOMAD_SECRETS_DIR" }}/approvers.json
          WRIT_APPROVERS_KEYS={{ env "NOMAD_SECRETS_DIR" }}/approvers.pub.pem
          {{- end }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/approvers.json"
        perms       = "0400"
        change_mode = "noop"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ if .approver_registry.Value }}{{ .approver_registry.Value }}{{ end }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/approvers.pub.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-node-runner" }}{{ if .approvers_key_pem.Value }}{{ .approvers_key_pem.Value }}{{ end }}{{ end }}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }

      # raw_exec stops a task with SIGINT unless told otherwise; the runner
      # drains on SIGINT as on SIGTERM: in-flight runs finish for up to 30 s
      # (its drain-timeout default) and their results are published. 45 s
      # leaves room for that; the client's max_kill_timeout (default 30s) must
      # be raised to at least 45s or Nomad silently caps this
      # (terraform/nomad-client-snippets/client.hcl).
      kill_timeout = "45s"
    }
  }
}
