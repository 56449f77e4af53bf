//! A private network for a run's nodes, so that partitions drop real packets for any broker
//! binary: every node runs in a network namespace of its own with its own address, all plugged
//! into a bridge that lives in one more namespace (the "switch"); the harness and the client
//! processes stay in the host namespace and reach the nodes through a veth pair into that switch.
//!
//! ```text
//!  host ns: kh<pid>_<n> 10.A.B.1 (clients) + 10.A.B.254 (proxy relay for broker links)
//!     │ veth
//!  kaos_<pid>_<n>_sw: br0 ── v2 ── eth0 10.A.B.2  kaos_<pid>_<n>_n1
//!                        └─ v3 ── eth0 10.A.B.3  kaos_<pid>_<n>_n2  …
//! ```
//!
//! The bridge is in its own namespace because the host may pass bridged frames through its
//! iptables FORWARD chain (br_netfilter), whose policy Docker sets to DROP; a fresh namespace
//! has no such rule.
//!
//! A partition is a set of nftables rules, one table `kaos_<pid>` in each affected node's
//! namespace, that drop packets by source and destination address (a node is its address; the
//! client side is 10.A.B.1; a node's proxy is 10.A.B.1:<its port>). Healing deletes the tables.
//! Deleting the namespaces removes everything (veths, bridge, tables); [`Network`] does that on
//! drop, and [`Network::create`] first removes what a harness killed with SIGKILL left behind.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const NETNS_DIR: &str = "/run/netns";
static NEXT: AtomicU32 = AtomicU32::new(0);

/// One side of a cut: a node (platform index) or every client process (the host side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Node(usize),
    Clients,
}

pub struct Network {
    /// `<pid>_<n>`: unique among the live harness processes of this machine.
    id: String,
    /// The /24 is 10.A.B.0.
    net: (u8, u8),
    switch: String,
    /// Namespace names, by node index.
    node_ns: Vec<String>,
    /// The nftables table of this run (in each node namespace that has rules).
    table: String,
    /// Host-side ports of each node's proxy, when the run has proxies.
    proxy_ports: Vec<Option<u16>>,
    /// Namespaces that have a table now.
    ruled: Vec<usize>,
    removed: bool,
}

/// Why the namespaced network cannot be used here, if it cannot.
pub fn check_available() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("network faults need root (network namespaces and nftables)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !found.is_ok_and(|s| s.success()) {
            return Err(format!(
                "network faults need the `{tool}` command (Debian package {package})"
            ));
        }
    }
    Ok(())
}

impl Network {
    /// Creates the switch and one namespace per node (`names` in platform order), each with its
    /// address, loopback up and a route to the host side.
    pub fn create(names: &[String]) -> Result<Network> {
        check_available().map_err(anyhow::Error::msg)?;
        if names.len() > 250 {
            bail!("at most 250 nodes on one network");
        }
        remove_stale();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{pid}_{n}");
        let net = free_subnet(pid, n)?;
        let mut network = Network {
            switch: format!("kaos_{id}_sw"),
            node_ns: names
                .iter()
                .map(|name| format!("kaos_{id}_{name}"))
                .collect(),
            id,
            net,
            table: format!("kaos_{pid}"),
            proxy_ports: vec![None; names.len()],
            ruled: Vec::new(),
            removed: false,
        };
        // On error the half-built network is dropped, which removes what exists of it.
        network
            .build()
            .context("creating the run's network namespaces")?;
        Ok(network)
    }

    fn build(&mut self) -> Result<()> {
        let sw = self.switch.clone();
        ip(&["netns", "add", &sw])?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        let host = self.host_veth();
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", "uplink", "netns", &sw,
        ])?;
        ip(&["-n", &sw, "link", "set", "uplink", "master", "br0", "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.client_ip()),
            "dev",
            &host,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.relay_ip()),
            "dev",
            &host,
        ])?;
        ip(&["link", "set", &host, "up"])?;
        for i in 0..self.node_ns.len() {
            let ns = self.node_ns[i].clone();
            let port = format!("v{}", i + 2);
            ip(&["netns", "add", &ns])?;
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.node_ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn host_veth(&self) -> String {
        format!("kh{}", self.id)
    }

    /// The address of node `i` (in its namespace).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net.0, self.net.1, i as u8 + 2)
    }

    /// The host side's address: where client connections come from.
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net.0, self.net.1, 1)
    }

    /// The host side's second address: a proxy relays a broker's connection from here, so that
    /// the receiving node can tell it from a client's.
    pub fn relay_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net.0, self.net.1, 254)
    }

    /// `/run/netns/<name>` of node `i`, for [`crate::process::command_in_netns`].
    pub fn netns_path(&self, i: usize) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.node_ns[i])
    }

    pub fn netns_name(&self, i: usize) -> &str {
        &self.node_ns[i]
    }

    /// Records the host port of node `i`'s proxy, so that cuts also stop the links through it.
    pub fn set_proxy_port(&mut self, i: usize, port: u16) {
        self.proxy_ports[i] = Some(port);
    }

    /// Drops every packet between the two sides of each cut (both directions), replacing any
    /// partition in force. A node on both sides of one cut is refused.
    pub fn partition(&mut self, cuts: &[(Vec<Endpoint>, Vec<Endpoint>)]) -> Result<()> {
        let rules = cut_rules(
            cuts,
            |j| self.node_ip(j).into(),
            self.client_ip().into(),
            &self.proxy_ports,
        )?;
        self.heal()?;
        for (i, (input, output)) in rules {
            self.ruled.push(i);
            nft_in(&self.node_ns[i], &cut_script(&self.table, &input, &output))
                .with_context(|| format!("partitioning in namespace {}", self.node_ns[i]))?;
        }
        Ok(())
    }

    /// Removes every partition rule.
    pub fn heal(&mut self) -> Result<()> {
        let mut first_error = None;
        for i in std::mem::take(&mut self.ruled) {
            if let Err(e) = nft_in(
                &self.node_ns[i],
                &format!("delete table inet {}\n", self.table),
            ) {
                first_error
                    .get_or_insert(e.context(format!("healing namespace {}", self.node_ns[i])));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the namespaces (their veths, the bridge and every rule go with them). Processes
    /// still inside keep their namespace alive until they exit: stop the nodes first.
    pub fn remove(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        self.ruled.clear();
        let mut first_error = None;
        for ns in self.node_ns.iter().chain(std::iter::once(&self.switch)) {
            if Path::new(NETNS_DIR).join(ns).exists() {
                if let Err(e) = ip(&["netns", "delete", ns]) {
                    first_error.get_or_insert(e);
                }
            }
        }
        // The host veth goes with its peer in the switch namespace; make sure of it.
        let host = self.host_veth();
        if Path::new("/sys/class/net").join(&host).exists() {
            let _ = ip(&["link", "delete", &host]);
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The nftables rules of a partition, by node index: (input, output) rules in that node's
/// network namespace, dropping every packet across each cut (both directions). A node is its
/// address (`node_ip`); with proxies (`proxy_ports`, by node index) a node's links through
/// another node's proxy are `host`:<that proxy's port>; the clients are `host`, except the
/// proxies' ports (the node's own links through them stay up). A node on both sides of one cut
/// is refused. The local and docker platforms both cut with these rules.
pub fn cut_rules(
    cuts: &[(Vec<Endpoint>, Vec<Endpoint>)],
    node_ip: impl Fn(usize) -> IpAddr,
    host: IpAddr,
    proxy_ports: &[Option<u16>],
) -> Result<BTreeMap<usize, (Vec<String>, Vec<String>)>> {
    let mut rules: BTreeMap<usize, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for (a, b) in cuts {
        if a.iter().any(|e| b.contains(e)) {
            bail!("a partition cannot put an endpoint on both sides: {a:?} / {b:?}");
        }
        for (mine, theirs) in [(a, b), (b, a)] {
            for me in mine {
                let Endpoint::Node(i) = *me else { continue };
                let (input, output) = rules.entry(i).or_default();
                for other in theirs {
                    rules_against(*other, &node_ip, host, proxy_ports, input, output);
                }
            }
        }
    }
    Ok(rules)
}

/// The rules, in one node's namespace, that cut it from `other` (see [`cut_rules`]).
fn rules_against(
    other: Endpoint,
    node_ip: &impl Fn(usize) -> IpAddr,
    host: IpAddr,
    proxy_ports: &[Option<u16>],
    input: &mut Vec<String>,
    output: &mut Vec<String>,
) {
    match other {
        Endpoint::Node(j) => {
            let ip = node_ip(j);
            input.push(format!("  ip saddr {ip} drop"));
            output.push(format!("  ip daddr {ip} drop"));
            if let Some(port) = proxy_ports.get(j).copied().flatten() {
                input.push(format!("  ip saddr {host} tcp sport {port} drop"));
                output.push(format!("  ip daddr {host} tcp dport {port} drop"));
            }
        }
        Endpoint::Clients => {
            let ports: Vec<String> = proxy_ports
                .iter()
                .flatten()
                .map(|p| p.to_string())
                .collect();
            if ports.is_empty() {
                input.push(format!("  ip saddr {host} drop"));
                output.push(format!("  ip daddr {host} drop"));
            } else {
                // The node's own links through the other nodes' proxies stay up.
                let set = ports.join(", ");
                input.push(format!("  ip saddr {host} tcp sport != {{ {set} }} drop"));
                input.push(format!("  ip saddr {host} meta l4proto != tcp drop"));
                output.push(format!("  ip daddr {host} tcp dport != {{ {set} }} drop"));
                output.push(format!("  ip daddr {host} meta l4proto != tcp drop"));
            }
        }
    }
}

/// The nft script that puts one node's partition rules (see [`cut_rules`]) in table `table`,
/// replacing the table if it is there.
pub fn cut_script(table: &str, input: &[String], output: &[String]) -> String {
    format!(
        "add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n chain input {{ type filter hook input priority -10; policy accept;\n{}\n }}\n chain output {{ type filter hook output priority -10; policy accept;\n{}\n }}\n}}\n",
        input.join("\n"),
        output.join("\n"),
    )
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("kaos: removing the run's network namespaces: {e:#}");
        }
    }
}

/// Runs `ip ARGS`; its standard error becomes the error.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs an nft script in namespace `ns` (`ip netns exec NS nft -f -`).
fn nft_in(ns: &str, script: &str) -> Result<()> {
    nft_script(&["ip", "netns", "exec", ns], ns, script)
}

/// Runs `nft -f -` with `script` on its stdin, under `launcher` (the command that enters the
/// namespace, e.g. `ip netns exec NS` or `nsenter -t PID -n`); `place` names it in the error.
pub fn nft_script(launcher: &[&str], place: &str, script: &str) -> Result<()> {
    let (program, args) = launcher.split_first().context("no launcher for nft")?;
    let mut child = Command::new(program)
        .args(args)
        .args(["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program} nft"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("writing the nft script")?;
    }
    let out = child.wait_with_output().context("running nft")?;
    if !out.status.success() {
        bail!(
            "nft in {place}: {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A 10.A.B.0/24 that no interface of the host uses and no other run holds, starting from a
/// place drawn from the PID so that concurrent runs rarely even look at the same one.
fn free_subnet(pid: u32, n: u32) -> Result<(u8, u8)> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .context("running ip addr")?;
    let used = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = (pid.wrapping_mul(2_654_435_761) ^ n.wrapping_mul(40_503)) % (128 * 256);
    for k in 0..128 * 256 {
        let x = (start + k) % (128 * 256);
        let (a, b) = (64 + (x / 256) as u8, (x % 256) as u8);
        if !used.contains(&format!(" 10.{a}.{b}.")) {
            return Ok((a, b));
        }
    }
    bail!("no free 10.x.y.0/24 for the run's network")
}

/// Deletes the namespaces of harness processes that no longer exist (a harness killed with
/// SIGKILL runs no destructor).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::process::dead_harness(&name, "kaos_", '_').is_some() {
            let _ = ip(&["netns", "delete", &name]);
        }
    }
}

#[cfg(test)]
/// Binds a TCP listener inside the network namespace at `netns`: a short-lived thread enters the
/// namespace (setns affects only the calling thread) and the socket stays in it for life.
pub fn bind_in(netns: &Path, addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    let ns = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    std::thread::spawn(move || -> Result<std::net::TcpListener> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the namespace")?;
        std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
}

#[cfg(test)]
/// Connects to `addr` from inside the network namespace at `netns` (see [`bind_in`]).
pub fn connect_from(
    netns: &Path,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> Result<std::net::TcpStream> {
    let ns = std::fs::File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
    std::thread::spawn(move || -> Result<std::net::TcpStream> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the namespace")?;
        std::net::TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connecting to {addr}"))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the namespace thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_millis(600);

    /// An echo server in node `i`'s namespace (one thread per connection, each bounded by its
    /// read timeout); the listener thread ends with the test process.
    fn echo_in(net: &Network, i: usize) -> SocketAddr {
        let addr = SocketAddr::from((net.node_ip(i), 7000));
        let listener = bind_in(&net.netns_path(i), addr).expect("bind in namespace");
        std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                    let mut b = [0u8; 1];
                    while s.read_exact(&mut b).is_ok() && s.write_all(&b).is_ok() {}
                });
            }
        });
        addr
    }

    /// One byte there and back within the wait.
    fn exchange(s: &mut TcpStream) -> bool {
        let _ = s.set_read_timeout(Some(WAIT));
        let mut b = [0u8; 1];
        s.write_all(&[7]).is_ok() && s.read_exact(&mut b).is_ok() && b == [7]
    }

    /// A fresh connection from the host (None) or from node `from`, and one exchange.
    fn reach(net: &Network, from: Option<usize>, to: SocketAddr) -> bool {
        let s = match from {
            None => TcpStream::connect_timeout(&to, WAIT).map_err(anyhow::Error::from),
            Some(i) => connect_from(&net.netns_path(i), to, WAIT),
        };
        s.is_ok_and(|mut s| exchange(&mut s))
    }

    #[test]
    fn cut_rules_drop_by_address_and_keep_a_node_s_links_through_the_proxies() {
        let ip = |j: usize| IpAddr::from([10, 0, 0, 2 + j as u8]);
        let host = IpAddr::from([10, 0, 0, 1]);
        let cut = [(
            vec![Endpoint::Node(0)],
            vec![Endpoint::Node(1), Endpoint::Clients],
        )];
        let rules = cut_rules(&cut, ip, host, &[None, None]).expect("rules");
        assert_eq!(rules.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(
            rules[&0].0,
            vec!["  ip saddr 10.0.0.3 drop", "  ip saddr 10.0.0.1 drop"]
        );
        assert_eq!(rules[&1].1, vec!["  ip daddr 10.0.0.2 drop"]);
        let proxied = cut_rules(&cut, ip, host, &[Some(7000), Some(7001)]).expect("rules");
        assert_eq!(
            proxied[&0].1,
            vec![
                "  ip daddr 10.0.0.3 drop",
                "  ip daddr 10.0.0.1 tcp dport 7001 drop",
                "  ip daddr 10.0.0.1 tcp dport != { 7000, 7001 } drop",
                "  ip daddr 10.0.0.1 meta l4proto != tcp drop",
            ]
        );
        let both = [(vec![Endpoint::Node(0)], vec![Endpoint::Node(0)])];
        let refused = cut_rules(&both, ip, host, &[None]).expect_err("refused");
        assert!(format!("{refused}").contains("both sides"), "{refused}");
        let script = cut_script("kaos_1", &rules[&1].0, &rules[&1].1);
        assert!(
            script.starts_with("add table inet kaos_1\ndelete table inet kaos_1\n")
                && script.contains("  ip saddr 10.0.0.2 drop"),
            "{script}"
        );
    }

    #[test]
    fn partitions_drop_real_packets_and_heal() {
        if let Err(why) = check_available() {
            panic!("this test needs network namespaces: {why}");
        }
        let names: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        let mut net = Network::create(&names).expect("network");
        let ns: Vec<PathBuf> = (0..3).map(|i| net.netns_path(i)).collect();
        let (a1, a2, a3) = (echo_in(&net, 0), echo_in(&net, 1), echo_in(&net, 2));
        assert!(
            reach(&net, None, a1) && reach(&net, Some(1), a1) && reach(&net, Some(0), a3),
            "all connected before"
        );
        // A connection established before the partition stops carrying bytes during it.
        let mut established = connect_from(&ns[1], a1, WAIT).expect("n2 → n1");
        assert!(exchange(&mut established));

        // n1 isolated from the other nodes and the clients.
        net.partition(&[(
            vec![Endpoint::Node(0)],
            vec![Endpoint::Node(1), Endpoint::Node(2), Endpoint::Clients],
        )])
        .expect("isolate n1");
        assert!(!reach(&net, None, a1), "host → n1 during isolation");
        assert!(!reach(&net, Some(1), a1), "n2 → n1 during isolation");
        assert!(!reach(&net, Some(0), a3), "n1 → n3 during isolation");
        assert!(
            !exchange(&mut established),
            "an established connection is cut too"
        );
        assert!(
            reach(&net, Some(1), a3) && reach(&net, None, a2),
            "the others still talk"
        );

        net.heal().expect("heal");
        assert!(
            reach(&net, None, a1) && reach(&net, Some(1), a1) && reach(&net, Some(0), a3),
            "all connected after heal"
        );

        // Clients cut from n2 only: the nodes still reach it.
        net.partition(&[(vec![Endpoint::Clients], vec![Endpoint::Node(1)])])
            .expect("cut clients");
        assert!(!reach(&net, None, a2), "host → n2 while clients are cut");
        assert!(
            reach(&net, Some(0), a2) && reach(&net, None, a1),
            "n1 → n2 and host → n1 still work"
        );
        net.heal().expect("heal");
        assert!(reach(&net, None, a2));

        // Halves {n1} | {n2, n3}: the clients reach both.
        net.partition(&[(
            vec![Endpoint::Node(0)],
            vec![Endpoint::Node(1), Endpoint::Node(2)],
        )])
        .expect("halves");
        assert!(
            !reach(&net, Some(2), a1) && !reach(&net, Some(0), a2),
            "across the halves"
        );
        assert!(
            reach(&net, None, a1) && reach(&net, None, a3) && reach(&net, Some(1), a3),
            "within and from clients"
        );

        drop(established);
        drop(net);
        for p in &ns {
            assert!(!p.exists(), "{} is left", p.display());
        }
    }
}
