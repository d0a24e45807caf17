fn main() -> std::process::ExitCode {
    seedwatch::cli::main()
}
