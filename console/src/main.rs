//! `smarttracker-console`: the manager's console window (`gui`, `demo`),
//! the headless engine (`serve`) and commands for scripts (sync, agents,
//! export, report, screenshot); see `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
