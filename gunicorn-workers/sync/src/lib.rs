//! The sync worker class.
