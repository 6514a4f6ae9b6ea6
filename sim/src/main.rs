//! The `printk-sim` binary: see `printk_sim::cli`.

fn main() -> std::process::ExitCode {
    printk_sim::cli::main()
}
