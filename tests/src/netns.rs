//! Hosts for tests that cross a network: Linux network namespaces, each a host with its own
//! interfaces, addresses and firewall, joined by a bridge in a namespace of their own (the
//! switch). Made with `ip` and `iptables`, as root; removed when dropped.
//!
//! A test that cannot make them fails and says why: these tests are marked
//! `#[ignore = "needs network namespaces: …"]`, and `.ci/run` runs them as root with
//! iproute2 and iptables installed.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// What the tests that use namespaces say they need, for `#[ignore = …]`.
pub const NEEDS: &str = "needs network namespaces: root, apt-get install iproute2 iptables";

/// Runs `ip` with `args`; its error output if it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    run_tool("ip", args)
}

fn run_tool(tool: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {tool} ({e}); {NEEDS}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {}: {}; {NEEDS}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A LAN of hosts on one bridge, `10.S.N.1`, `10.S.N.2`, … (/24), with no default route, so
/// only what the hosts are told or discover joins them. Other hosts (a router, a private
/// network behind it) can be added.
pub struct Lan {
    /// A short id, unique among the LANs alive on this machine: names the namespaces.
    id: String,
    /// `10.S.N`: the LAN's first three octets.
    prefix: String,
    namespaces: Vec<String>,
    hosts: Vec<String>,
}

impl Lan {
    /// A LAN of `hosts` hosts; panics saying why if it cannot be made.
    pub fn new(hosts: usize) -> Lan {
        Lan::try_new(hosts).unwrap_or_else(|why| panic!("cannot make the test network: {why}"))
    }

    fn try_new(hosts: usize) -> Result<Lan, String> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            remove_orphans();
        }
        let pid = std::process::id();
        // The pid whole, then the LAN's number: `remove_orphans` reads the pid back.
        let id = format!("{pid}-{n}");
        let mut lan = Lan {
            prefix: format!("10.{}.{}", 100 + (n % 100), pid % 250),
            id,
            namespaces: Vec::new(),
            hosts: Vec::new(),
        };
        let switch = lan.namespace("sw")?;
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &switch, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let host = lan.namespace(&format!("h{i}"))?;
            let address = format!("{}.{}/24", lan.prefix, i + 1);
            lan.plug(&host, &format!("h{i}"), &address)?;
            lan.hosts.push(host);
        }
        Ok(lan)
    }

    /// Makes a namespace with loopback up; it is deleted with the LAN.
    fn namespace(&mut self, role: &str) -> Result<String, String> {
        let name = format!("rmi{}-{role}", self.id);
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// Joins namespace `ns` to the bridge with `address`, by a veth pair named after `role`.
    fn plug(&self, ns: &str, role: &str, address: &str) -> Result<(), String> {
        let switch = &self.namespaces[0];
        let (inside, outside) = (format!("e{}{role}", self.id), format!("s{}{role}", self.id));
        ip(&[
            "link", "add", &inside, "netns", ns, "type", "veth", "peer", "name", &outside, "netns",
            switch,
        ])?;
        ip(&["-n", switch, "link", "set", &outside, "master", "br0"])?;
        ip(&["-n", switch, "link", "set", &outside, "up"])?;
        ip(&["-n", ns, "addr", "add", address, "dev", &inside])?;
        ip(&["-n", ns, "link", "set", &inside, "up"])
    }

    /// The address of host `i`.
    pub fn addr(&self, i: usize) -> String {
        format!("{}.{}", self.prefix, i + 1)
    }

    /// Host `i`'s namespace.
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    /// Takes host `i`'s link to the LAN down (a cut cable) or up again.
    pub fn set_link(&self, i: usize, up: bool) {
        let inside = format!("e{}h{i}", self.id);
        let state = if up { "up" } else { "down" };
        ip(&["-n", self.host(i), "link", "set", &inside, state])
            .unwrap_or_else(|why| panic!("{why}"));
    }

    /// Runs `iptables` with `args` on host `i`.
    pub fn iptables(&self, i: usize, args: &[&str]) {
        let mut all = vec!["netns", "exec", self.host(i), "iptables"];
        all.extend_from_slice(args);
        ip(&all).unwrap_or_else(|why| panic!("{why}"));
    }

    /// `program` (a path) run on host `i`, with no `RMI_*` setting of this process's.
    pub fn command(&self, i: usize, program: &Path) -> Command {
        in_namespace(self.host(i), program)
    }

    /// Adds a router on the LAN at `10.S.N.254`, with a private network behind it
    /// (`192.168.N.0/24`: the router is `.1`, the private host `.2`). The private host's
    /// connections out are masqueraded as the router's; `forward` lists the router's TCP
    /// ports forwarded (DNAT) to the same port of the private host. Returns the private
    /// host's namespace and address, and the router's public address.
    pub fn nat(&mut self, forward: &[u16]) -> (String, String, String) {
        self.try_nat(forward)
            .unwrap_or_else(|why| panic!("cannot make the NAT: {why}"))
    }

    fn try_nat(&mut self, forward: &[u16]) -> Result<(String, String, String), String> {
        let router = self.namespace("router")?;
        let public = format!("{}.254", self.prefix);
        self.plug(&router, "r", &format!("{public}/24"))?;
        let private_net = format!("192.168.{}", self.prefix.rsplit('.').next().unwrap_or("1"));
        let private = self.namespace("private")?;
        let (inside, outside) = (format!("p{}i", self.id), format!("p{}o", self.id));
        ip(&[
            "link", "add", &inside, "netns", &private, "type", "veth", "peer", "name", &outside,
            "netns", &router,
        ])?;
        ip(&[
            "-n",
            &router,
            "addr",
            "add",
            &format!("{private_net}.1/24"),
            "dev",
            &outside,
        ])?;
        ip(&["-n", &router, "link", "set", &outside, "up"])?;
        let private_addr = format!("{private_net}.2");
        ip(&[
            "-n",
            &private,
            "addr",
            "add",
            &format!("{private_addr}/24"),
            "dev",
            &inside,
        ])?;
        ip(&["-n", &private, "link", "set", &inside, "up"])?;
        ip(&[
            "-n",
            &private,
            "route",
            "add",
            "default",
            "via",
            &format!("{private_net}.1"),
        ])?;
        run_tool(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        let router_public_if = format!("e{}r", self.id);
        let nat = |args: &[&str]| {
            let mut all = vec!["netns", "exec", router.as_str(), "iptables", "-t", "nat"];
            all.extend_from_slice(args);
            run_tool("ip", &all)
        };
        nat(&[
            "-A",
            "POSTROUTING",
            "-o",
            &router_public_if,
            "-j",
            "MASQUERADE",
        ])?;
        for port in forward {
            let (port, to) = (port.to_string(), format!("{private_addr}:{port}"));
            nat(&[
                "-A",
                "PREROUTING",
                "-d",
                &public,
                "-p",
                "tcp",
                "--dport",
                &port,
                "-j",
                "DNAT",
                "--to-destination",
                &to,
            ])?;
        }
        Ok((private, private_addr, public))
    }
}

/// `program` run inside the namespace `ns`, with no `RMI_*` setting of this process's.
pub fn in_namespace(ns: &str, program: &Path) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    for (name, _) in std::env::vars() {
        if name.starts_with("RMI_") {
            command.env_remove(name);
        }
    }
    command
}

/// Removes the namespaces of LANs whose process is gone: one killed (SIGKILL, a CI job
/// cancelled) never ran `Drop`. Names are `rmi{pid}-{n}-{role}`.
fn remove_orphans() {
    let Ok(listed) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let pid = name
            .strip_prefix("rmi")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces, and with them their veth peers.
        for ns in self.namespaces.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
