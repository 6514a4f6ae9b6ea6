//! The `printk-sim` binary: see `printk_sim::cli`.

fn main() -> std::process::ExitCode {
    // A reader that goes away (`printk-sim list | head`) ends the process
    // quietly, as it ends any Unix filter, instead of a panic on the next
    // print: the Rust runtime ignores SIGPIPE, so give it its default back.
    // SAFETY: called before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    printk_sim::cli::main()
}
