//! What the benches share: a busybox image in a temporary directory.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;

/// A busybox image, removed on drop.
pub struct Image(PathBuf);

impl Image {
    /// `/bin/busybox` with `sh` and `true`, the usual mount points; `tag` names the directory.
    pub fn new(tag: &str) -> Image {
        let busybox = std::env::var("CONTAIN_BENCH_BUSYBOX")
            .ok()
            .into_iter()
            .chain(["/bin/busybox".into(), "/usr/bin/busybox".into()])
            .find(|p| std::path::Path::new(p).is_file())
            .expect("a static busybox (apt-get install busybox-static)");
        let dir = std::env::temp_dir().join(format!("contain-bench-{tag}-{}", std::process::id()));
        let root = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        for applet in ["sh", "true"] {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        Image(dir)
    }

    pub fn root(&self) -> PathBuf {
        self.0.join("rootfs")
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
