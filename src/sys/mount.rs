//! Raw mount-API syscalls (open_tree, move_mount, fsopen, fsconfig, fsmount, mount_setattr).
