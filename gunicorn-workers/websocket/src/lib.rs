//! Sans-IO WebSocket (RFC 6455), server side. (Being written.)
#![deny(unsafe_code)]
