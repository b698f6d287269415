# Sourced by recipes: debian_tree DIR [ROOT_UUID] builds a small tree laid out
# like a Debian 12 cloud system as an image build leaves it (not yet fit for
# Azure: quiet, no serial console, no agent).
debian_tree() {
  local d=$1 root_uuid=${2:-6b8f4c64-1c1e-4f0e-9a0b-00000000d12a}
  local kver=6.1.0-13-cloud-amd64
  mkdir -p "$d"/{etc/default,etc/ssh,etc/modprobe.d,boot/grub,usr/bin,usr/sbin,usr/lib/systemd,"usr/lib/modules/$kver/kernel/drivers/hv",var/log,root,home,tmp}
  ln -s usr/bin "$d/bin"; ln -s usr/sbin "$d/sbin"; ln -s usr/lib "$d/lib"; ln -s usr/lib "$d/lib64"
  cp /bin/true "$d/usr/bin/true"
  printf '#!/bin/sh\n' > "$d/usr/lib/systemd/systemd"; chmod 755 "$d/usr/lib/systemd/systemd"
  ln -s ../lib/systemd/systemd "$d/usr/sbin/init"
  cat > "$d/etc/os-release" <<OS
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
OS
  echo 12.4 > "$d/etc/debian_version"
  echo debian > "$d/etc/hostname"
  echo 0123456789abcdef0123456789abcdef > "$d/etc/machine-id"
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$root_uuid" > "$d/etc/fstab"
  printf 'root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000::/home/debian:/bin/bash\n' > "$d/etc/passwd"
  printf 'root:*:19000:0:99999:7:::\ndebian:$6$salt$hash:19000:0:99999:7:::\n' > "$d/etc/shadow"
  printf 'root:x:0:\ndebian:x:1000:\n' > "$d/etc/group"
  cat > "$d/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX=""
GRUB
  cat > "$d/boot/grub/grub.cfg" <<CFG
menuentry 'Debian GNU/Linux' --class debian {
	insmod ext2
	search --no-floppy --fs-uuid --set=root $root_uuid
	linux	/boot/vmlinuz-$kver root=UUID=$root_uuid ro  quiet
	initrd	/boot/initrd.img-$kver
}
CFG
  echo "not a real kernel" > "$d/boot/vmlinuz-$kver"
  printf 'CONFIG_HYPERV=m\nCONFIG_HYPERV_STORAGE=m\nCONFIG_HYPERV_NET=m\nCONFIG_UDF_FS=m\nCONFIG_VFAT_FS=m\n' > "$d/boot/config-$kver"
  printf 'kernel/fs/ext4/ext4.ko\n' > "$d/usr/lib/modules/$kver/modules.builtin"
  printf 'kernel/drivers/hv/hv_vmbus.ko:\n' > "$d/usr/lib/modules/$kver/modules.dep"
  printf 'Port 22\nInclude /etc/ssh/sshd_config.d/*.conf\n' > "$d/etc/ssh/sshd_config"
  mkdir -p "$d/etc/network"
  printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' > "$d/etc/network/interfaces"
  # Enough entries that ext4 indexes /etc as an htree directory.
  mkdir -p "$d/etc/conf.d"
  for i in $(seq 1 320); do echo "setting $i" > "$d/etc/conf.d/item-$i.conf"; done
  for i in $(seq 1 320); do : > "$d/etc/placeholder-$i"; done
}
