//! The worker exit statuses with a meaning to the master (gunicorn's arbiter constants).

/// gunicorn's exit status when a worker failed to boot.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// gunicorn's exit status when the application could not be loaded.
pub const APP_LOAD_ERROR: i32 = 4;
