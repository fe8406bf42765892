//! Where operations run: a single-threaded executor owned by the thread that calls the store
//! (the JS thread), deadlines, socket readiness on that thread, and busy polling for replies.
//! Nothing here knows what a store or a key is (that is `core`), nor napi (that is `js`).

pub mod busy_poll;
pub mod executor;
pub mod reactor;
pub mod timer;
pub mod wait_list;
