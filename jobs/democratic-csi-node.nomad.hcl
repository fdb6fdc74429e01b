# democratic-csi-node.nomad.hcl — the democratic-csi iSCSI node plugin, laid
# out as democratic-csi documents it for Nomad
# (docs/Nomad/examples/democratic-csi-iscsi-node.hcl), plus the guard against
# the wipe: a multipath map with no active path group probes as "unformatted",
# and the plugin then runs mkfs over a live LUN.
#
#   nomad job run -var-file=csi.vars.hcl jobs/democratic-csi-node.nomad.hcl
#
# What is added to the upstream example, and why:
# 1. FILESYSTEM_TYPE_DETECTION_STRATEGY = "blkid" and /run/udev read-only:
#    the default lsblk probe needs udev data, without it every volume looks
#    unformatted. Necessary, not sufficient: blkid also answers "nothing here"
#    (exit 2) for a device it could not read.
# 2. The mkfs guard (jobs/scripts/mkfs-guard.sh) in front of every formatter
#    and partitioner in the image. democratic-csi has no setting that disables
#    auto-format, and it never checks fs_type: it spawns "mkfs.<fs_type>" by
#    name (src/utils/filesystem.js), resolved through PATH, and for ntfs first
#    writes a partition table with sfdisk. Its image is debian:12-slim with
#    e2fsprogs, xfsprogs, btrfs-progs, dosfstools, exfatprogs, ntfs-3g, fdisk
#    and gdisk, so the real binaries are in /usr/sbin, and /usr/local/sbin
#    comes first on PATH (upstream puts its own iscsiadm/multipath wrappers
#    there). The guard is bind-mounted as /usr/local/sbin/<name> for every
#    one of them, PATH is pinned below so an image change cannot reorder it,
#    and the guard:
#      - formats only with mkfs.<fs> for fs in allowed_filesystems (ext4, xfs
#        by default), and only an allow-listed, proven-blank device, by
#        exec'ing the real /usr/sbin binary;
#      - refuses every other formatter (mkfs.btrfs, mkfs.vfat, mkfs.ntfs,
#        mke2fs, mkswap, the mkfs front end, …) and every partition-table
#        write (sfdisk, fdisk, gdisk, …) outright, with one REFUSE line: a
#        volume with another fs_type fails to stage instead of being
#        formatted unguarded;
#      - lets sfdisk's report forms (--dump, --list, …) run: growpart,
#        which the plugin runs on a partitioned volume at every stage, reads
#        the table with them. Its resize is a write and is refused, and
#        democratic-csi ignores growpart's failure, so a volume WITH A
#        PARTITION TABLE does not grow its partition (terraform/README.md
#        "The mkfs guard and new volumes").
#    Binding over /usr/sbin/mkfs.* instead would hide the real binary from the
#    guard itself.
# 3. kill_timeout = "60s": a NodeUnstage/unmount in flight must finish rather
#    than be killed mid-way. The client's max_kill_timeout (default 30s) caps
#    it; raise it to at least 60s (terraform/nomad-client-snippets/client.hcl).
#
# New volumes: allow-list the device on the host (one path or WWID a line in
# /etc/writ/mkfs-allow) before first use, or format it with
# jobs/scripts/format-new-volume.sh. An entry is used once.

variable "namespace" {
  description = "Nomad namespace of the writ jobs (terraform: nomad_namespace.writ); service discovery and Nomad Variables are per namespace, so every writ job shares it."
  type        = string
  default     = "writ"
}

variable "datacenters" {
  description = "Datacenters whose clients get the node plugin."
  type        = list(string)
  default     = ["dc1"]
}

variable "node_pool" {
  description = "Node pool whose clients get the node plugin."
  type        = string
  default     = "all"
}

variable "image" {
  description = "democratic-csi image. Pin a digest in production: the guard placement relies on the real mkfs.* living in /usr/sbin (the guard refuses every format when it does not)."
  type        = string
  default     = "docker.io/democraticcsi/democratic-csi:latest"
}

variable "plugin_id" {
  description = "CSI plugin id; volumes refer to it. Also the plugin's --csi-name, which democratic-csi requires to be the same (and the controller's)."
  type        = string
  default     = "org.democratic-csi.iscsi"
}

variable "driver_config_yaml" {
  description = "democratic-csi driver config YAML (driver, iscsi, node.* keys). Put the storage API secrets in the controller's config, not here."
  type        = string
}

variable "mkfs_guard_script" {
  description = "Contents of jobs/scripts/mkfs-guard.sh (terraform passes file(); with the CLI: -var \"mkfs_guard_script=$(cat jobs/scripts/mkfs-guard.sh)\")."
  type        = string
}

variable "blank_proof_lib" {
  description = "Contents of jobs/scripts/lib/blank-proof.sh, sourced by the guard."
  type        = string
}

variable "mkfs_allow_list_host_path" {
  description = "Allow-list of devices that may be formatted, on the host (reached through the plugin's /host mount)."
  type        = string
  default     = "/etc/writ/mkfs-allow"
}

variable "allowed_filesystems" {
  description = "Filesystems the guard may create (mkfs.<fs>, after the blank-and-readable proof); every other formatter and every partitioner is refused."
  type        = list(string)
  default     = ["ext4", "xfs"]
}

variable "blank_proof_timeout_seconds" {
  description = "Seconds each probe of a device may take before the guard refuses (a read that hangs on a queueing map is abandoned, not waited on)."
  type        = number
  default     = 10
}

job "democratic-csi-node" {
  namespace   = var.namespace
  type        = "system"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  group "node" {
    task "plugin" {
      driver = "docker"

      env {
        CSI_NODE_ID = attr.unique.hostname

        # See 1. above.
        FILESYSTEM_TYPE_DETECTION_STRATEGY = "blkid"

        # See 2. above: /usr/local/sbin (the guard) before /usr/sbin (the real mkfs).
        PATH                  = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        MKFS_GUARD_REAL_DIR   = "/usr/sbin"
        MKFS_GUARD_ALLOWED_FS = join(" ", var.allowed_filesystems)
        MKFS_GUARD_LIB        = "/opt/writ/lib/blank-proof.sh"
        MKFS_GUARD_ALLOW_LIST = "/host${var.mkfs_allow_list_host_path}"
        BLANK_PROOF_TIMEOUT   = var.blank_proof_timeout_seconds
        # Lives as long as the container: a reader stuck in D state belongs to
        # this container's processes, and so does the marker naming it.
        BLANK_PROOF_STATE_DIR = "/run/writ-blank-proof"
      }

      config {
        image = var.image

        args = [
          "--csi-version=1.5.0",
          "--csi-name=${var.plugin_id}",
          "--driver-config-file=${NOMAD_TASK_DIR}/driver-config-file.yaml",
          "--log-level=info",
          "--csi-mode=node",
          "--server-socket=/csi/csi.sock",
        ]

        # As upstream: iscsiadm and multipath run on the host via chroot /host.
        privileged   = true
        ipc_mode     = "host"
        network_mode = "host"

        mount {
          type     = "bind"
          target   = "/host"
          source   = "/"
          readonly = false
        }

        # See 1. above.
        mount {
          type     = "bind"
          target   = "/run/udev"
          source   = "/run/udev"
          readonly = true
        }

        # See 2. above. Relative sources are the task directory. One mount per
        # name, into /usr/local/sbin (first on PATH, and first on sudo's
        # secure_path too): every formatter, then every partitioner, that
        # e2fsprogs, util-linux, xfsprogs, btrfs-progs, dosfstools, exfatprogs,
        # ntfs-3g, fdisk and gdisk install in the image
        # (test/mkfs-guard-coverage.test.ts derives the list from Debian's
        # packages and fails if one is missing here).
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkdosfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mke2fs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.bfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.btrfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.cramfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.exfat"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.ext2"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.ext3"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.ext4"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.fat"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.minix"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.msdos"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.ntfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.vfat"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkfs.xfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkntfs"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/mkswap"
          readonly = true
        }

        # Partitioners: democratic-csi partitions with sfdisk for ntfs, and
        # growpart calls sfdisk; the guard refuses every table write and lets
        # only sfdisk's report forms through.
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/cfdisk"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/cgdisk"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/fdisk"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/fixparts"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/gdisk"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/sfdisk"
          readonly = true
        }
        mount {
          type     = "bind"
          source   = "local/writ/mkfs-guard.sh"
          target   = "/usr/local/sbin/sgdisk"
          readonly = true
        }

        mount {
          type     = "bind"
          source   = "local/writ/lib"
          target   = "/opt/writ/lib"
          readonly = true
        }
      }

      # The scripts are plain shell; the delimiters keep any "{{" in them from
      # being read as a template.
      template {
        destination     = "local/writ/mkfs-guard.sh"
        perms           = "0755"
        change_mode     = "restart"
        data            = var.mkfs_guard_script
        left_delimiter  = "[[writ-no-template["
        right_delimiter = "]]writ-no-template]"
      }

      template {
        destination     = "local/writ/lib/blank-proof.sh"
        perms           = "0644"
        change_mode     = "restart"
        data            = var.blank_proof_lib
        left_delimiter  = "[[writ-no-template["
        right_delimiter = "]]writ-no-template]"
      }

      template {
        destination     = "${NOMAD_TASK_DIR}/driver-config-file.yaml"
        change_mode     = "restart"
        data            = var.driver_config_yaml
        left_delimiter  = "[[writ-no-template["
        right_delimiter = "]]writ-no-template]"
      }

      csi_plugin {
        id        = var.plugin_id
        type      = "node"
        mount_dir = "/csi"
      }

      resources {
        cpu    = 500
        memory = 256
      }

      # See 3. above.
      kill_timeout = "60s"
    }
  }
}
