# nats.nomad.hcl — the 3-server NATS JetStream cluster writ keeps all its
# state in (run records in KV, results/events/audit in streams).
#
#   nomad job run -var 'datacenters=["dc1"]' jobs/nats.nomad.hcl
#
# Authorization is NATS decentralized (JWT) auth, see terraform/README.md
# "NATS authorization". The servers only hold public material: the operator
# JWT and the account JWTs, read from the Nomad Variable nomad/jobs/writ-nats.
# Per-node rights come from the WRIT account's scoped signing key "node-runner"
# whose permissions are templates on the user name ({{name()}} = Nomad node
# id), so adding a node never touches this job.
#
# TLS on both listeners, from the same variable (tls_ca_pem, tls_cert_pem,
# tls_key_pem): clients must speak TLS (their credentials and every writ
# travel over it), and routes are mutual TLS (nats-server requires and
# verifies the peer's certificate on routes), so the route password never
# travels in clear and a sniffed one is no way in. The HTTP monitor (/connz,
# /accountz, /jsz list every connection and account) listens on loopback
# only; the health check is a TCP connect to the client port.

variable "namespace" {
  description = "Nomad namespace of the writ jobs (terraform: nomad_namespace.writ); service discovery and Nomad Variables are per namespace, so every writ job shares it."
  type        = string
  default     = "writ"
}

variable "datacenters" {
  description = "Datacenters the NATS servers may run in."
  type        = list(string)
  default     = ["dc1"]
}

variable "node_pool" {
  description = "Nomad node pool for the NATS servers."
  type        = string
  default     = "default"
}

variable "nats_image" {
  description = "NATS server image (2.10 or newer: JWT permission templates and JetStream clustering)."
  type        = string
  default     = "docker.io/library/nats:2.10-alpine"
}

variable "server_count" {
  description = "Number of NATS servers. JetStream needs 3 (or 5) for an R3 quorum that survives one loss."
  type        = number
  default     = 3
}

variable "cluster_name" {
  description = "NATS cluster name (the JetStream cluster's name too)."
  type        = string
  default     = "writ"
}

variable "client_port" {
  description = "Static host port for NATS clients. Static so runners and the control plane have stable addresses."
  type        = number
  default     = 4222
}

variable "cluster_port" {
  description = "Static host port for NATS route (cluster) connections."
  type        = number
  default     = 6222
}

variable "monitor_port" {
  description = "Static host port for the NATS HTTP monitor (/healthz, /varz, /connz …), bound to 127.0.0.1 only: it lists every connection and account."
  type        = number
  default     = 8222
}

variable "data_host_volume" {
  description = "Name of the Nomad client host_volume that holds the JetStream store (see terraform/nomad-client-snippets/host-volumes.hcl)."
  type        = string
  default     = "writ-nats"
}

variable "jetstream_max_file_store" {
  description = "JetStream file store limit per server, NATS size syntax."
  type        = string
  default     = "20G"
}

job "writ-nats" {
  namespace   = var.namespace
  type        = "service"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  group "nats" {
    count = var.server_count

    # One server per host: two replicas of a stream on one machine are one
    # failure away from losing quorum together.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # Stateful: one server at a time, each healthy for 30 s before the next.
    update {
      max_parallel     = 1
      min_healthy_time = "30s"
      healthy_deadline = "5m"
    }

    network {
      port "client" {
        static = var.client_port
      }
      port "cluster" {
        static = var.cluster_port
      }
      port "monitor" {
        static = var.monitor_port
      }
    }

    volume "data" {
      type      = "host"
      source    = var.data_host_volume
      read_only = false
    }

    service {
      name     = "writ-nats"
      provider = "nomad"
      port     = "client"

      # The monitor is on loopback, out of the check's reach: a TCP connect
      # to the client port says the server is up and accepting clients.
      check {
        type     = "tcp"
        port     = "client"
        interval = "10s"
        timeout  = "3s"
      }
    }

    service {
      name     = "writ-nats-cluster"
      provider = "nomad"
      port     = "cluster"
    }

    task "nats" {
      driver = "docker"

      config {
        image        = var.nats_image
        network_mode = "host"
        args         = ["--config", "/local/nats.conf"]
      }

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      # Operator and account JWTs: public, but they decide who may connect, so
      # they live in a Nomad Variable that only this job and operators read.
      template {
        destination = "local/auth.conf"
        change_mode = "signal"
        # nats-server reloads accounts and revocations on SIGHUP.
        change_signal = "SIGHUP"
        data          = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-nats" }}
          operator: "{{ .operator_jwt }}"
          system_account: "{{ .system_account_public_key }}"
          resolver: MEMORY
          resolver_preload: {
            "{{ .system_account_public_key }}": "{{ .system_account_jwt }}"
            "{{ .writ_account_public_key }}": "{{ .writ_account_jwt }}"
          }
          {{- end }}
        EOT
      }

      # The cluster's certificate: the CA, and one certificate and key every
      # server presents to clients and to its peers (mutual TLS on routes).
      # Its SANs name the servers as clients and peers reach them: the
      # nats_tls_server_name DNS name, and the IP of every host that may run
      # a server (routes go by IP). terraform/README.md "NATS over TLS".
      template {
        destination   = "secrets/nats-ca.pem"
        perms         = "0400"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-nats" }}{{ .tls_ca_pem }}{{ end }}
        EOT
      }

      template {
        destination   = "secrets/nats-cert.pem"
        perms         = "0400"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-nats" }}{{ .tls_cert_pem }}{{ end }}
        EOT
      }

      template {
        destination   = "secrets/nats-key.pem"
        perms         = "0400"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-nats" }}{{ .tls_key_pem }}{{ end }}
        EOT
      }

      # Route credentials and the current peer list. Peers come and go with
      # allocations; SIGHUP reloads routes without dropping client connections.
      # The password goes into a URL and a quoted config string unescaped:
      # terraform allows only URL-unreserved characters in it
      # (nats_route_password), which need no escaping in either.
      template {
        destination   = "secrets/cluster.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          {{- with nomadVar "nomad/jobs/writ-nats" }}{{ $pw := .cluster_route_password }}
          cluster {
            name: "${var.cluster_name}"
            listen: "0.0.0.0:{{ env "NOMAD_PORT_cluster" }}"
            tls {
              cert_file: "/secrets/nats-cert.pem"
              key_file: "/secrets/nats-key.pem"
              ca_file: "/secrets/nats-ca.pem"
              timeout: 5
            }
            authorization {
              user: "route"
              password: "{{ $pw }}"
            }
            routes: [
            {{- range nomadService "writ-nats-cluster" }}
              "nats-route://route:{{ $pw }}@{{ .Address }}:{{ .Port }}"
            {{- end }}
            ]
          }
          {{- end }}
        EOT
      }

      template {
        destination   = "local/nats.conf"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          server_name: "writ-nats-{{ env "NOMAD_ALLOC_INDEX" }}"
          listen: "0.0.0.0:{{ env "NOMAD_PORT_client" }}"
          tls {
            cert_file: "/secrets/nats-cert.pem"
            key_file: "/secrets/nats-key.pem"
            timeout: 5
          }
          http: "127.0.0.1:{{ env "NOMAD_PORT_monitor" }}"
          max_payload: 1MB

          jetstream {
            store_dir: "/data/jetstream"
            max_file_store: ${var.jetstream_max_file_store}
          }

          include "../secrets/cluster.conf"
          include "auth.conf"
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }

      # Lets JetStream flush and hand over stream leadership before exit
      # (docker stops the task with SIGTERM, nats-server's graceful stop).
      kill_timeout = "30s"
    }
  }
}
