public import Glibc
import Synchronization

/// A program the tests start and stop themselves (a PostgreSQL script, a `paynotify` instance,
/// nginx, chromedriver), by its pid.
///
/// Spawned with `posix_spawn` and reaped with `waitpid` on its own pid: Foundation's `Process` was
/// seen here never returning from `waitUntilExit` when two children ended at the same time. The
/// child starts through `bash`, which closes every descriptor but 0–2 before `exec`ing the
/// program: the test process holds many sockets, and a child that inherited one would keep it
/// open after the test closed it.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let name: String
    private let exitStatus = Mutex<Int32?>(nil)

    private init(pid: pid_t, name: String) {
        self.pid = pid
        self.name = name
    }

    /// Starts `executable` (a path) with `arguments`, standard output to `outputPath` and standard
    /// error to `errorPath` (appended to, so it may be the same file), or the tests' own when `nil`.
    ///
    /// - Parameter environment: the child's whole environment; `nil` inherits the tests'.
    public static func start(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        workingDirectory: String = "/",
        outputPath: String,
        errorPath: String? = nil
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        // No redirection on the loop: bash would park the real stderr on a descriptor the loop
        // then closes, and the program would run with its stderr lost (seen here).
        // It starts in `workingDirectory`, "/" unless told: the tests' own (a fresh clone in a
        // mode-700 temporary directory, say) may be closed to a program that runs as another user
        // (seen here: Patroni, as postgres, failed in Python's multiprocessing, which enters it).
        let prelude =
            #"cd -- "$1" || exit 1; shift; for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done; exec "$0" "$@""#
        let argv =
            (["/bin/bash", "-c", prelude, executable, workingDirectory] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var envp = (environment ?? [:]).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        // Every signal at its default and none blocked: the test process's own mask and ignored
        // signals would otherwise pass to the child through exec (seen here: PgBouncer never saw
        // the SIGTERM that stops it).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let spawned =
            environment == nil
            ? posix_spawn(&pid, "/bin/bash", &actions, &attributes, argv, environ)
            : posix_spawn(&pid, "/bin/bash", &actions, &attributes, argv, &envp)
        guard spawned == 0 else { throw TestSetupError("could not start \(executable): error \(spawned)") }
        return ChildProcess(pid: pid, name: executable.split(separator: "/").last.map(String.init) ?? executable)
    }

    /// Sends a signal (`SIGTERM`, `SIGKILL`…) unless the process has been reaped.
    public func signal(_ signal: Int32) {
        guard self.exitStatus.withLock({ $0 }) == nil else { return }
        kill(self.pid, signal)
    }

    /// Waits for the process to end, off the cooperative pool, and returns its wait status.
    @discardableResult
    public func wait() async throws -> Int32 {
        if let status = self.exitStatus.withLock({ $0 }) { return status }
        let pid = self.pid
        let status = try await TestThreads.run {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else { throw TestSetupError("waitpid(\(pid)) failed: errno \(errno)") }
            }
            return status
        }
        self.exitStatus.withLock { $0 = status }
        return status
    }

    /// True while the process runs; once it has ended, it is reaped here.
    public var isRunning: Bool {
        if self.exitStatus.withLock({ $0 }) != nil { return false }
        var status: Int32 = 0
        guard waitpid(self.pid, &status, WNOHANG) == self.pid else { return true }
        self.exitStatus.withLock { $0 = status }
        return false
    }

    /// `SIGTERM`, then `SIGKILL` if it has not ended within `grace`; reaps it either way.
    public func stop(grace: Duration = .seconds(10)) async throws {
        self.signal(SIGTERM)
        let pid = self.pid
        let killer = Task {
            try await Task.sleep(for: grace)
            kill(pid, SIGKILL)
        }
        defer { killer.cancel() }
        try await self.wait()
    }

    /// True when the wait status says the process exited with code 0.
    public static func succeeded(_ status: Int32) -> Bool {
        status & 0x7f == 0 && (status >> 8) & 0xff == 0
    }
}
