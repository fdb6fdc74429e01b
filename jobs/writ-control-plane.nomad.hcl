# writ-control-plane.nomad.hcl — the agent API, MCP endpoint, approvals portal
# and dispatcher. Stateless (all state is in NATS JetStream), so it runs as
# several identical instances behind Nomad service discovery.
#
#   nomad job run -var 'release_base_url=https://releases.example.internal/writ' \
#     -var writ_version=0.1.0 -var control_plane_sha256=<sha256> \
#     -var packs_sha256=<sha256> -var public_url=https://writ.example.internal \
#     jobs/writ-control-plane.nomad.hcl
#
# Secrets come from the Nomad Variable nomad/jobs/writ-control-plane (written by
# terraform's nomad_variable), never from this file:
#   signing_key_pem     Ed25519 private key (PEM) that signs writs
#   slack_webhook_url   incoming webhook for approval requests
#   principals_yaml     the `principals:` YAML list (ids, groups, token SHA-256s;
#                       the tokens themselves are never stored)
#   nats_creds          NATS user credentials (JWT + seed) of the control plane
#   nats_ca_pem, nats_tls_server_name
#                       the NATS cluster's CA and the name on its certificate
#   nomad_ca_pem        (optional) CA of the Nomad agents' https certificates
#   nomad_client_cert_pem, nomad_client_key_pem
#                       (optional) client certificate and key for agents with
#                       tls { verify_https_client = true }
#
# Nomad API: the allocation's workload identity (NOMAD_TOKEN); the policy
# attached to this job (terraform: nomad_acl_policy.control_plane) is node
# read, for GET /v1/nodes, its only Nomad call. No long-lived token exists.
#
# The task runs as task_user (nobody), so every file it reads from secrets/
# is owned by task_uid:task_gid: Nomad renders templates as root unless a
# template sets uid/gid (hashicorp/nomad#5020), and a 0400 root file is
# unreadable to nobody.

variable "namespace" {
  description = "Nomad namespace of the writ jobs (terraform: nomad_namespace.writ); service discovery and Nomad Variables are per namespace, so every writ job shares it."
  type        = string
  default     = "writ"
}

variable "datacenters" {
  description = "Datacenters the control plane may run in."
  type        = list(string)
  default     = ["dc1"]
}

variable "node_pool" {
  description = "Nomad node pool for the control plane."
  type        = string
  default     = "default"
}

variable "instance_count" {
  description = "Number of control-plane instances; at least 2 so one can be replaced while the other serves."
  type        = number
  default     = 2
}

variable "release_base_url" {
  description = "Base URL of the writ release artifacts; files are fetched from <base>/v<version>/<name>."
  type        = string
}

variable "writ_version" {
  description = "writ release version (without the leading v)."
  type        = string
}

variable "control_plane_sha256" {
  description = "SHA-256 of writ-linux-x64 for this version; Nomad refuses a download that does not match."
  type        = string
}

variable "packs_sha256" {
  description = "SHA-256 of writ-packs-<version>.tar.gz (stock packs plus the operator's own); the runners verify the same bytes."
  type        = string
}

variable "public_url" {
  description = "URL operators and agents reach the control plane at (approval links in Slack point here)."
  type        = string
}

variable "jetstream_replicas" {
  description = "Replicas of writ's streams and KV bucket: 3 on the 3-server NATS cluster."
  type        = number
  default     = 3
}

variable "policy_yaml" {
  description = "Policy rules (YAML with a top-level `rules:` list). Not secret: it is reviewed like code."
  type        = string
  default     = "rules: []\n"
}

variable "oauth_json" {
  description = "MCP authorization: the control plane's `oauth` settings as one JSON object (see control-plane/README.md, \"MCP authorization\"); empty leaves it off (static bearer tokens only)."
  type        = string
  default     = ""
}

variable "log_level" {
  description = "Control-plane log level."
  type        = string
  default     = "info"
}

variable "nomad_addr" {
  description = "Nomad HTTP API the control plane reads (NOMAD_ADDR), scheme included: https://… on a cluster with TLS (the CA comes from the nomad_ca_pem item), http://… only without."
  type        = string
  default     = "https://127.0.0.1:4646"
}

variable "nomad_tls_server_name" {
  description = "Name on the Nomad agents' https certificates when nomad_addr's host is not on them (NOMAD_TLS_SERVER_NAME), e.g. client.global.nomad; empty for none."
  type        = string
  default     = ""
}

variable "task_user" {
  description = "Host user the control plane runs as (the exec driver's default is nobody)."
  type        = string
  default     = "nobody"
}

variable "task_uid" {
  description = "Numeric uid of task_user on the clients; the secret templates are owned by it (Debian/Ubuntu/RHEL nobody: 65534)."
  type        = number
  default     = 65534
}

variable "task_gid" {
  description = "Numeric primary gid of task_user on the clients (Debian/Ubuntu nogroup, RHEL nobody: 65534)."
  type        = number
  default     = 65534
}

job "writ-control-plane" {
  namespace   = var.namespace
  type        = "service"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  group "control-plane" {
    count = var.instance_count

    # Two instances on one host are one failure away from zero.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "3m"
      auto_revert      = true
    }

    network {
      port "http" {}
    }

    service {
      name     = "writ-control-plane"
      provider = "nomad"
      port     = "http"
      tags     = ["writ", "http"]

      # /readyz is 503 until NATS, JetStream and the packs are loaded; traffic
      # goes only to instances that can actually dispatch.
      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "control-plane" {
      # exec: the release is a single executable that needs no host access;
      # the exec driver isolates it (chroot, cgroups) and marks it executable.
      driver = "exec"
      user   = var.task_user

      artifact {
        source      = "${var.release_base_url}/v${var.writ_version}/writ-linux-x64"
        destination = "local/bin/writ"
        mode        = "file"
        options {
          checksum = "sha256:${var.control_plane_sha256}"
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
        command = "local/bin/writ"
        args    = ["serve", "--config", "/secrets/writ.yaml"]
      }

      # The workload identity as NOMAD_TOKEN, for GET /v1/nodes at nomad_addr.
      # It is this allocation's own and stops working when the allocation stops.
      identity {
        env  = true
        file = false
      }

      env {
        WRIT_LISTEN_HOST = NOMAD_IP_http
        WRIT_LISTEN_PORT = NOMAD_PORT_http
        WRIT_INSTANCE_ID = NOMAD_ALLOC_ID
        # Scheme and CA are the operator's (nomad_addr, nomad_ca_pem): nothing
        # here assumes plain http.
        NOMAD_ADDR            = var.nomad_addr
        NOMAD_TLS_SERVER_NAME = var.nomad_tls_server_name
        # exec hands the task the Nomad agent's own environment (the packaged
        # unit loads /etc/nomad.d/nomad.env). Every Nomad setting the control
        # plane reads is set here, empty (= unset) unless secrets/env below
        # sets it from the Nomad Variable: env templates win over env.
        NOMAD_CACERT      = ""
        NOMAD_CLIENT_CERT = ""
        NOMAD_CLIENT_KEY  = ""
      }

      # Secrets land in secrets/ (tmpfs, not readable by other tasks) and are
      # re-rendered when the variable changes; restart picks up rotated keys.
      template {
        destination = "secrets/signing-key.pem"
        perms       = "0400"
        uid         = var.task_uid
        gid         = var.task_gid
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .signing_key_pem }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/nats.creds"
        perms       = "0400"
        uid         = var.task_uid
        gid         = var.task_gid
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .nats_creds }}{{ end }}
        EOT
      }

      # The portal's session-cookie key: the same on every instance, so any
      # instance serves any signed-in operator.
      template {
        destination = "secrets/portal-session.key"
        perms       = "0400"
        uid         = var.task_uid
        gid         = var.task_gid
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .portal_session_key }}{{ end }}
        EOT
      }

      # Read by Nomad into the environment, not by the task; still the task
      # user's, like every file in secrets/.
      template {
        destination = "secrets/env"
        env         = true
        perms       = "0400"
        uid         = var.task_uid
        gid         = var.task_gid
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}
          WRIT_SLACK_WEBHOOK_URL={{ .slack_webhook_url }}
          {{- if .nomad_ca_pem.Value }}
          NOMAD_CACERT={{ env "NOMAD_SECRETS_DIR" }}/nomad-ca.pem
          {{- end }}
          {{- if .nomad_client_cert_pem.Value }}
          NOMAD_CLIENT_CERT={{ env "NOMAD_SECRETS_DIR" }}/nomad-client.pem
          NOMAD_CLIENT_KEY={{ env "NOMAD_SECRETS_DIR" }}/nomad-client-key.pem
          {{- end }}
          {{- if .nats_ca_pem.Value }}
          WRIT_NATS_CA={{ env "NOMAD_SECRETS_DIR" }}/nats-ca.pem
          WRIT_NATS_TLS_SERVER_NAME={{ .nats_tls_server_name.Value }}
          {{- end }}
          {{- end }}
        EOT
      }

      # Public, but only the cluster's CA may vouch for the agent the
      # control plane sends its token to.
      template {
        destination = "secrets/nomad-ca.pem"
        perms       = "0444"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .nomad_ca_pem.Value }}{{ end }}
        EOT
      }

      # The NATS cluster's CA: NATS is TLS only (see secrets/env).
      template {
        destination = "secrets/nats-ca.pem"
        perms       = "0444"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .nats_ca_pem.Value }}{{ end }}
        EOT
      }

      # verify_https_client: the certificate the control plane presents to
      # the agent. The certificate is public; its key is the task user's only.
      template {
        destination = "secrets/nomad-client.pem"
        perms       = "0444"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .nomad_client_cert_pem.Value }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/nomad-client-key.pem"
        perms       = "0400"
        uid         = var.task_uid
        gid         = var.task_gid
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ .nomad_client_key_pem.Value }}{{ end }}
        EOT
      }

      # Passkey approvals (see the runner job): the published registry, reloaded
      # by the control plane itself when it changes, and its public key. Both
      # public; only an administrator's approvers key can make either count.
      template {
        destination = "secrets/approvers.json"
        perms       = "0444"
        change_mode = "noop"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ if .approver_registry.Value }}{{ .approver_registry.Value }}{{ end }}{{ end }}
        EOT
      }

      template {
        destination = "secrets/approvers.pub.pem"
        perms       = "0444"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-control-plane" }}{{ if .approvers_key_pem.Value }}{{ .approvers_key_pem.Value }}{{ end }}{{ end }}
        EOT
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

      template {
        destination = "local/policy.yaml"
        change_mode = "restart"
        data        = var.policy_yaml
        # Policy files are plain YAML; keep Go-template markers in them literal.
        left_delimiter  = "[[writ-no-template["
        right_delimiter = "]]writ-no-template]"
      }

      template {
        # The config embeds the principals (token hashes), so it is rendered
        # into secrets/ with the other secrets. Paths are absolute: the exec
        # driver's chroot puts the task directory at /.
        destination = "secrets/writ.yaml"
        perms       = "0400"
        uid         = var.task_uid
        gid         = var.task_gid
        change_mode = "restart"
        data        = <<-EOT
          public_url: "${var.public_url}"
          nats:
            # servers: WRIT_NATS_URL, from local/nats.env
            name: "writ-control-plane-{{ env "NOMAD_ALLOC_INDEX" }}"
            creds_file: "/secrets/nats.creds"
          jetstream:
            replicas: ${var.jetstream_replicas}
          packs:
            dirs: ["/local/packs"]
          signing:
            key_file: "/secrets/signing-key.pem"
          policy:
            file: "/local/policy.yaml"
          portal:
            session_key_file: "/secrets/portal-session.key"
          %{if var.oauth_json != ""}oauth: ${var.oauth_json}%{endif}
          log:
            level: "${var.log_level}"
          {{ with nomadVar "nomad/jobs/writ-control-plane" }}{{ if .approver_registry.Value }}
          passkeys:
            registry_file: "/secrets/approvers.json"
            approvers_key_file: "/secrets/approvers.pub.pem"
          {{ end }}{{ .principals_yaml }}{{ end }}
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }

      # In-flight HTTP requests and NATS subscriptions drain before exit.
      kill_timeout = "20s"
    }
  }
}
