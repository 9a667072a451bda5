public import Foundation
import Glibc
import NIOHTTP1
import PayNotifyClient
import Postgres
import Synchronization

/// Two PostgreSQL nodes under Patroni (Debian's 3.0.2) with one etcd (3.4), every port a free
/// loopback one: a leader and a synchronous standby (`synchronous_mode`), for tests of what a
/// failover or a switchover does to the service. The timings are a test's, not production's (ttl
/// 10 s, loop_wait 2 s, retry_timeout 3 s, fsync off). Measured here on 2 cores: ready (leader, sync
/// standby, database) 11–19 s after start; writes again 9.5–10.7 s after the leader is SIGKILLed; a
/// switchover refuses writes for about 1.8 s; a killed node restarted rejoins as sync standby
/// (pg_rewind) in 6.5–12.5 s.
///
/// initdb and postgres refuse root, so as root Patroni runs as `postgres` (`setpriv` execs it: the
/// pid is Patroni's own); etcd runs as the tests do. Patroni starts its postmaster detached (its
/// parent is init, not Patroni), so a postmaster is signalled by the pid in its `postmaster.pid`,
/// checked against its command line. Everything it starts, it stops (by pid).
public final class TestPatroni: Sendable {
    /// One node: a Patroni and the PostgreSQL it runs.
    private struct Node: Sendable {
        let name: String
        let directory: URL
        let postgresPort: Int
        let restPort: Int

        var configuration: String { self.directory.appendingPathComponent("patroni.yml").path }
        /// Patroni's log, with its PostgreSQL's (Patroni passes the server its own standard error).
        var log: String { self.directory.appendingPathComponent("patroni.log").path }
        var dataDirectory: String { self.directory.appendingPathComponent("data").path }
    }

    /// A member as `GET /cluster` lists it. Patroni 3.0.2's roles are `leader`, `sync_standby` and
    /// `replica`; its states include `running`, `starting`, `stopped`, `stopping` and
    /// `initializing new cluster`.
    private struct Member: Sendable, CustomStringConvertible {
        let name: String
        let role: String
        let state: String

        var description: String { "\(self.name) \(self.role) \(self.state)" }
    }

    /// Where the nodes, etcd and their logs live.
    public let directory: URL
    private let nodes: [Node]
    private let etcd: ChildProcess
    private let etcdLog: String
    /// The current Patroni of each node (by name), and every Patroni started (to reap them all).
    private let processes: Mutex<(current: [String: ChildProcess], all: [ChildProcess])>

    private init(directory: URL, nodes: [Node], etcd: ChildProcess, etcdLog: String) {
        self.directory = directory
        self.nodes = nodes
        self.etcd = etcd
        self.etcdLog = etcdLog
        self.processes = Mutex((current: [:], all: []))
    }

    /// Database `paynotify` on whichever node is the leader: libpq tries the nodes in order and
    /// keeps the first that takes writes. An open connection is not moved by a failover; a new one
    /// finds the new leader.
    public var url: String { self.url(database: "paynotify") }

    /// Starts etcd and two nodes, waits for a leader and a sync standby, and creates database
    /// `paynotify`. On failure it stops what it started and throws with the logs' last lines.
    public static func start() async throws -> TestPatroni {
        for program in ["/usr/bin/patroni", "/usr/bin/patronictl", "/usr/bin/etcd"] {
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw TestSetupError("\(program) is not installed (Debian packages patroni and etcd-server)")
            }
        }
        let binaries = try Self.postgresBinaries()
        let owner = try Self.clusterOwner()
        let directory = try TestEnvironment.workDirectory().appendingPathComponent("patroni-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if owner != nil { try Self.grantTraverse(directory.path) }
        let ports = try Self.freePorts(6)
        let nodes = (1...2).map { index in
            Node(
                name: "pg\(index)",
                directory: directory.appendingPathComponent("pg\(index)"),
                postgresPort: ports[2 * index],
                restPort: ports[2 * index + 1]
            )
        }
        for node in nodes {
            try FileManager.default.createDirectory(at: node.directory, withIntermediateDirectories: true)
            try Self.configuration(of: node, etcdPort: ports[0], binaries: binaries)
                .write(toFile: node.configuration, atomically: true, encoding: .utf8)
            // Patroni writes its pgpass and the data directory here; initdb makes the latter mode 700.
            if let owner, chown(node.directory.path, owner.uid, owner.gid) != 0 {
                throw TestSetupError("chown \(node.directory.path) to postgres failed: errno \(errno)")
            }
        }

        let etcdLog = directory.appendingPathComponent("etcd.log").path
        let clientURL = "http://127.0.0.1:\(ports[0])"
        let peerURL = "http://127.0.0.1:\(ports[1])"
        let etcd = try ChildProcess.start(
            "/usr/bin/etcd",
            [
                "--name", "etcd", "--data-dir", directory.appendingPathComponent("etcd").path,
                "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
                "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
                "--initial-cluster", "etcd=\(peerURL)",
            ],
            outputPath: etcdLog,
            errorPath: etcdLog
        )
        let patroni = TestPatroni(directory: directory, nodes: nodes, etcd: etcd, etcdLog: etcdLog)
        do {
            let client = LoopbackHTTPClient(host: "127.0.0.1", port: ports[0])
            try await eventually(within: .seconds(20), "etcd answering on \(ports[0])") {
                guard etcd.isRunning else { return true }
                return (try? await client.send(method: .GET, path: "/health").status) == 200
            }
            guard etcd.isRunning else { throw TestSetupError("etcd exited") }
            for node in nodes { try patroni.startPatroni(node) }
            // initdb, a base backup and two starts, on 2 cores the whole test run shares.
            try await patroni.waitForLeaderAndSyncStandby(within: .seconds(180))
            let configuration = try ConnectionConfiguration(patroni.url(database: "postgres"))
            try await TestThreads.withConnection(configuration) { connection in
                try connection.execute("CREATE DATABASE paynotify")
            }
        } catch {
            try? await patroni.stop()
            throw TestSetupError("the Patroni cluster did not start: \(error)\n\(patroni.logTails)")
        }
        return patroni
    }

    /// Starts one, runs `body`, and stops it whether `body` threw or not.
    public static func run<T: Sendable>(_ body: @Sendable (TestPatroni) async throws -> T) async throws -> T {
        let patroni = try await Self.start()
        return try await running(
            { try await body(patroni) },
            onFailure: { print("---- patroni (last lines) ----\n" + patroni.logTails) },
            finally: { try await patroni.stop() }
        )
    }

    /// The name (`pg1` or `pg2`) of the node that leads now, as `GET /cluster` says. A node whose
    /// Patroni was killed is left out: its keys stay in etcd for up to the ttl (10 s). Throws when
    /// there is no leader, as during a failover.
    public func leader() async throws -> String {
        let current = self.processes.withLock { $0.current }
        let members = try await self.members()
        guard
            let leader = members.first(where: { $0.role == "leader" && current[$0.name]?.isRunning == true })
        else {
            throw TestSetupError("no leader now: \(members)")
        }
        return leader.name
    }

    /// SIGKILLs the leader's Patroni and its postmaster, as a crashed machine would stop, and
    /// returns the node's name. It first waits for a sync standby: in `synchronous_mode` only the
    /// sync standby may take over, so without one the cluster would stay leaderless.
    ///
    /// The other node leads about 10 s later (the leader key's ttl). A node restarted before then
    /// takes its own key back and leads again, with no failover (seen here).
    public func killLeader() async throws -> String {
        try await self.waitForLeaderAndSyncStandby(within: .seconds(60))
        let name = try await self.leader()
        let node = try self.node(name)
        guard let process = self.processes.withLock({ $0.current[name] }) else {
            throw TestSetupError("no Patroni was started for \(name)")
        }
        let postmaster = Self.postmasterPID(of: node)
        // Patroni first, or it would start the server again.
        process.signal(SIGKILL)
        if let postmaster { kill(postmaster, SIGKILL) }
        try await process.wait()
        // Its backends exit on their own once they see the postmaster gone.
        if let postmaster { try await Self.waitUntilGone(postmaster, within: .seconds(10)) }
        return name
    }

    /// Starts node `name`'s Patroni again (after ``killLeader()``), with the same configuration. It
    /// returns once started: the node runs crash recovery and pg_rewind, then follows the leader;
    /// ``waitForLeaderAndSyncStandby(within:)`` waits until it is the sync standby.
    public func restart(_ name: String) async throws {
        let node = try self.node(name)
        if let current = self.processes.withLock({ $0.current[name] }), current.isRunning {
            throw TestSetupError("\(name)'s Patroni is running: only a killed node can be restarted")
        }
        try self.startPatroni(node)
    }

    /// A planned switchover with `patronictl`, from the leader to the sync standby, and waits until
    /// the standby leads. Writes are refused for about 1.8 s; the old leader becomes the sync
    /// standby some 7–10 s later (``waitForLeaderAndSyncStandby(within:)``). `patronictl` exits 0
    /// even when Patroni refuses, so its output is checked too.
    public func switchover() async throws {
        try await self.waitForLeaderAndSyncStandby(within: .seconds(60))
        let leader = try await self.leader()
        guard let candidate = self.nodes.first(where: { $0.name != leader })?.name else {
            throw TestSetupError("no node to switch over to")
        }
        let configuration = try self.node(leader).configuration
        let log = self.directory.appendingPathComponent("patronictl-\(UUID().uuidString.prefix(8)).log").path
        let process = try ChildProcess.start(
            "/usr/bin/patronictl",
            ["-c", configuration, "switchover", "--leader", leader, "--candidate", candidate, "--force"],
            outputPath: log,
            errorPath: log
        )
        let killer = Task {
            try await Task.sleep(for: .seconds(60))
            process.signal(SIGKILL)
        }
        defer { killer.cancel() }
        let status = try await process.wait()
        let output = lastLines(ofFile: log, 20)
        guard ChildProcess.succeeded(status), !output.contains("failed, details") else {
            throw TestSetupError("patronictl switchover to \(candidate) failed (wait status \(status)):\n\(output)")
        }
        try await eventually(within: .seconds(30), "\(candidate) leading after the switchover") {
            if (try? await self.leader()) == candidate { return true }
            try await Task.sleep(for: Self.pollInterval)
            return false
        }
    }

    /// Waits until one node is the leader and the other its sync standby, both running: the steady
    /// state, and the only one in which a leader's crash is followed by a failover.
    public func waitForLeaderAndSyncStandby(within timeout: Duration = .seconds(60)) async throws {
        do {
            try await eventually(within: timeout, "a leader and a sync standby") {
                if await self.hasLeaderAndSyncStandby() { return true }
                try await Task.sleep(for: Self.pollInterval)
                return false
            }
        } catch {
            let members = (try? await self.members()).map { "\($0)" } ?? "no REST API answers"
            throw TestSetupError("\(error); members: \(members)")
        }
    }

    /// Stops both Patronis with SIGTERM (each stops its PostgreSQL), waits for them, then stops etcd;
    /// all by pid. Both at once: 6–8.5 s, as the standby waits for the leader to release it.
    public func stop() async throws {
        let patronis = self.processes.withLock { $0.all }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for process in patronis {
                group.addTask { try await process.stop(grace: .seconds(30)) }
            }
            try await group.waitForAll()
        }
        // A postmaster is left only if its Patroni had to be SIGKILLed: immediate shutdown, then SIGKILL.
        for node in self.nodes {
            guard let postmaster = Self.postmasterPID(of: node) else { continue }
            kill(postmaster, SIGQUIT)
            do {
                try await Self.waitUntilGone(postmaster, within: .seconds(10))
            } catch {
                kill(postmaster, SIGKILL)
                try await Self.waitUntilGone(postmaster, within: .seconds(10))
            }
        }
        try await self.etcd.stop()
    }

    /// The end of each log (etcd's, and each node's Patroni and PostgreSQL), for a failure's message.
    public var logTails: String {
        var text = "---- etcd.log ----\n" + lastLines(ofFile: self.etcdLog, 10)
        for node in self.nodes {
            // Without the loop's routine lines ("Lock owner", "no action"…), which would hide the rest.
            let routine = [
                "Lock owner:", "no action.", "waiting for leader to bootstrap", "bootstrap in progress",
                "not healthy enough for leader race",
            ]
            let lines = ((try? String(contentsOfFile: node.log, encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { line in !routine.contains { line.contains($0) } }
            text += "\n---- \(node.name)/patroni.log ----\n" + lines.suffix(40).joined(separator: "\n")
        }
        return text
    }

    // MARK: Plumbing

    /// How often a wait asks the REST API again: every request is Python work in a Patroni that
    /// shares two cores with everything else (``eventually(within:_:_:)`` alone checks every 20 ms).
    private static let pollInterval = Duration.milliseconds(200)

    private func url(database: String) -> String {
        let hosts = self.nodes.map { "127.0.0.1:\($0.postgresPort)" }.joined(separator: ",")
        return "postgres://postgres:secret@\(hosts)/\(database)?target_session_attrs=read-write&sslmode=disable"
    }

    private func node(_ name: String) throws -> Node {
        guard let node = self.nodes.first(where: { $0.name == name }) else {
            throw TestSetupError("no node \(name): the nodes are \(self.nodes.map(\.name))")
        }
        return node
    }

    private func startPatroni(_ node: Node) throws {
        let asOwner = getuid() == 0 ? ["--reuid=postgres", "--regid=postgres", "--init-groups"] : ["--"]
        let process = try ChildProcess.start(
            "/usr/bin/setpriv",
            asOwner + ["/usr/bin/patroni", node.configuration],
            outputPath: node.log,
            errorPath: node.log
        )
        self.processes.withLock { processes in
            processes.current[node.name] = process
            processes.all.append(process)
        }
    }

    /// `GET /cluster` from the first node whose REST API answers (any node gives etcd's view).
    private func members() async throws -> [Member] {
        var failures: [String] = []
        for node in self.nodes {
            do {
                let response = try await LoopbackHTTPClient(host: "127.0.0.1", port: node.restPort)
                    .send(method: .GET, path: "/cluster")
                guard response.status == 200,
                    let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                    let members = json["members"] as? [[String: Any]]
                else {
                    failures.append("\(node.name): \(response.status) \(response.text)")
                    continue
                }
                return members.map { member in
                    Member(
                        name: member["name"] as? String ?? "",
                        role: member["role"] as? String ?? "",
                        state: member["state"] as? String ?? ""
                    )
                }
            } catch {
                failures.append("\(node.name): \(error)")
            }
        }
        throw TestSetupError("no Patroni REST API answered: " + failures.joined(separator: "; "))
    }

    /// `GET /cluster` shows a running leader and a running sync standby, both Patronis are ours and
    /// alive, and each node confirms its own role (`/primary` and `/sync` answer 200 only then): a
    /// killed node's keys outlive it by up to the ttl, so etcd's view alone could be stale.
    private func hasLeaderAndSyncStandby() async -> Bool {
        let current = self.processes.withLock { $0.current }
        guard let members = try? await self.members() else { return false }
        let live = members.filter { $0.state == "running" && current[$0.name]?.isRunning == true }
        guard let leader = live.first(where: { $0.role == "leader" }).flatMap({ try? self.node($0.name) }),
            let standby = live.first(where: { $0.role == "sync_standby" }).flatMap({ try? self.node($0.name) })
        else { return false }
        let primaryStatus = try? await LoopbackHTTPClient(host: "127.0.0.1", port: leader.restPort)
            .send(method: .GET, path: "/primary").status
        let syncStatus = try? await LoopbackHTTPClient(host: "127.0.0.1", port: standby.restPort)
            .send(method: .GET, path: "/sync").status
        return primaryStatus == 200 && syncStatus == 200
    }

    /// The node's YAML. Timings for tests (loop_wait + 2 × retry_timeout ≤ ttl); fsync off for speed
    /// only. `max_connections` is in the DCS part: Patroni keeps it equal on every node.
    private static func configuration(of node: Node, etcdPort: Int, binaries: String) -> String {
        """
        scope: paytest
        name: \(node.name)
        restapi: {listen: "127.0.0.1:\(node.restPort)", connect_address: "127.0.0.1:\(node.restPort)"}
        etcd3: {hosts: "127.0.0.1:\(etcdPort)"}
        bootstrap:
          dcs:
            ttl: 10
            loop_wait: 2
            retry_timeout: 3
            maximum_lag_on_failover: 1048576
            synchronous_mode: true
            postgresql:
              use_pg_rewind: true
              parameters: {wal_level: replica, hot_standby: "on", max_connections: 300, fsync: "off"}
          initdb: [{encoding: UTF8}, data-checksums]
          pg_hba: ["host replication replicator 127.0.0.1/32 md5", "host all all 127.0.0.1/32 md5"]
        postgresql:
          listen: "127.0.0.1:\(node.postgresPort)"
          connect_address: "127.0.0.1:\(node.postgresPort)"
          data_dir: "\(node.dataDirectory)"
          bin_dir: "\(binaries)"
          pgpass: "\(node.directory.appendingPathComponent("pgpass").path)"
          authentication:
            replication: {username: replicator, password: rep-pass}
            superuser: {username: postgres, password: secret}
            rewind: {username: rewind_user, password: rewind_password}
          parameters: {unix_socket_directories: "\(node.directory.path)"}

        """
    }

    /// Debian's newest PostgreSQL server binaries (they are not on `PATH`).
    private static func postgresBinaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap { Int($0) }
        guard
            let version = versions.sorted().last(where: {
                FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/postgres")
            })
        else {
            throw TestSetupError("no PostgreSQL server in \(root)")
        }
        return "\(root)/\(version)/bin"
    }

    /// As root, the user the nodes run as (initdb and postgres refuse root); `nil` otherwise.
    private static func clusterOwner() throws -> (uid: uid_t, gid: gid_t)? {
        guard getuid() == 0 else { return nil }
        guard let entry = getpwnam("postgres") else { throw TestSetupError("there is no user postgres") }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// `postgres` must reach the directory: adds traverse permission (o+x, no listing) to each
    /// folder on the way that lacks it (`mktemp -d` makes mode 700 ones).
    private static func grantTraverse(_ path: String) throws {
        var folder = ""
        for component in path.split(separator: "/") {
            folder += "/" + component
            let attributes = try FileManager.default.attributesOfItem(atPath: folder)
            let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
            if permissions & 0o001 == 0 {
                try FileManager.default.setAttributes(
                    [.posixPermissions: NSNumber(value: permissions | 0o001)],
                    ofItemAtPath: folder
                )
            }
        }
    }

    /// `count` different free loopback ports.
    private static func freePorts(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        while ports.count < count {
            let port = try TestEnvironment.serverPort()
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }

    /// The pid in the node's `postmaster.pid` if that process is alive and is this data directory's
    /// postmaster: the file outlives a killed server, and its pid may since be another process's.
    private static func postmasterPID(of node: Node) -> pid_t? {
        guard let bytes = Self.contents(of: node.dataDirectory + "/postmaster.pid"),
            let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first,
            let pid = pid_t(line.trimmingCharacters(in: .whitespaces)),
            Self.isAlive(pid),
            let commandLine = Self.contents(of: "/proc/\(pid)/cmdline")
        else { return nil }
        let arguments = commandLine.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains(node.dataDirectory) ? pid : nil
    }

    /// True while `pid` runs; a zombie has ended. For processes that are not the tests' children (a
    /// postmaster's parent is init).
    private static func isAlive(_ pid: pid_t) -> Bool {
        guard let bytes = Self.contents(of: "/proc/\(pid)/stat") else { return false }
        // "pid (command) state …": the state follows the last ")".
        let fields = String(decoding: bytes, as: UTF8.self)
        guard let end = fields.lastIndex(of: ")") else { return false }
        let state = fields[fields.index(after: end)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }

    private static func waitUntilGone(_ pid: pid_t, within timeout: Duration) async throws {
        try await eventually(within: timeout, "process \(pid) gone") { !Self.isAlive(pid) }
    }

    /// A whole file read with `read(2)` until its end (files in /proc report a size of 0).
    private static func contents(of path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return count == 0 ? bytes : nil }
            bytes.append(contentsOf: buffer[..<count])
        }
    }

}
