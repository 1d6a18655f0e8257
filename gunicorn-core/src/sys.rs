//! The few system calls that need `unsafe`: broken-down local time, `fork`, and installing
//! signal handlers. Everything else goes through `nix`'s safe wrappers.
#![allow(unsafe_code)]

use crate::log::LocalTime;

/// The current local time with its UTC offset (`localtime_r`, which honours `TZ`).
pub fn local_time_now() -> LocalTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: `tm` is plain old data, so all-zero is a valid value; localtime_r only writes into
    // it and reads `now`, both valid for the duration of the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, properly aligned locals.
    let ok = unsafe { !libc::localtime_r(&now, &mut tm).is_null() };
    if !ok {
        return LocalTime {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            utc_offset: 0,
        };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        utc_offset: tm.tm_gmtoff,
    }
}
