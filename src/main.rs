fn main() -> std::process::ExitCode {
    seedwatch::transport::cli::main()
}
