# Sourced by recipes: a RHEL 9-like system split as the installer splits it.
# rhel_root_tree DIR BOOT_UUID ESP_UUID and rhel_boot_tree DIR ROOT_UUID.
RHEL_KVER=5.14.0-362.8.1.el9_3.x86_64
rhel_root_tree() {
  local d=$1 boot_uuid=$2 esp_uuid=$3
  mkdir -p "$d"/{etc/default,etc/ssh,etc/dracut.conf.d,boot,usr/bin,usr/sbin,usr/lib/systemd,"usr/lib/modules/$RHEL_KVER",var/log,root,home}
  ln -s usr/bin "$d/bin"; ln -s usr/sbin "$d/sbin"; ln -s usr/lib "$d/lib"; ln -s usr/lib "$d/lib64"
  cp /bin/true "$d/usr/bin/true"
  cat > "$d/etc/os-release" <<'OS'
NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
OS
  echo "Red Hat Enterprise Linux release 9.3 (Plow)" > "$d/etc/redhat-release"
  cat > "$d/etc/fstab" <<FSTAB
/dev/mapper/rhel-root   /                       xfs     defaults        0 0
UUID=$boot_uuid /boot                   xfs     defaults        0 0
UUID=$esp_uuid          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
/dev/mapper/rhel-swap   none                    swap    defaults        0 0
FSTAB
  cat > "$d/etc/default/grub" <<'GRUB'
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_CMDLINE_LINUX="crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet"
GRUB_ENABLE_BLSCFG=true
GRUB
  printf 'root:x:0:0:root:/root:/bin/bash\n' > "$d/etc/passwd"
  printf 'root:!!:19000:0:99999:7:::\n' > "$d/etc/shadow"
  printf 'CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\n' > "$d/usr/lib/modules/$RHEL_KVER/config"
  : > "$d/usr/lib/modules/$RHEL_KVER/modules.builtin"
  : > "$d/etc/machine-id"
}
rhel_boot_tree() {
  local d=$1
  mkdir -p "$d"/{loader/entries,grub2,efi}
  echo "not a real kernel" > "$d/vmlinuz-$RHEL_KVER"
  printf 'CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\n' > "$d/config-$RHEL_KVER"
  cat > "$d/loader/entries/0123456789abcdef-$RHEL_KVER.conf" <<BLS
title Red Hat Enterprise Linux (${RHEL_KVER}) 9.3 (Plow)
version $RHEL_KVER
linux /vmlinuz-$RHEL_KVER
initrd /initramfs-$RHEL_KVER.img \$tuned_initrd
options root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet
grub_users \$grub_users
grub_arg --unrestricted
grub_class rhel
BLS
  # grubenv is a fixed 1024-byte block padded with '#'.
  { printf '# GRUB Environment Block\nkernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto rhgb quiet\n'; } > "$d/grub2/grubenv"
  truncate -s 1024 "$d/grub2/grubenv"
}
