//! A network's own iptables rules, made once with the network (and again
//! with its bridge after a reboot), never per container: a masquerade for
//! its subnet (as Docker's `-s SUBNET ! -o BRIDGE -j MASQUERADE`) and the
//! forwarding rules that isolate its bridge from the other networks' (as
//! Docker's isolation chains and the CNI firewall plugin's `same-bridge`).
//! The CNI bridge plugin's `ipMasq` and the firewall plugin did the same per
//! container, with ~35 iptables execs per `run` (ADD + DEL): ~130 ms here.
//!
//! Each network owns two chains, `WHARF-N-<id>` (nat) and `WHARF-F-<id>`
//! (filter), filled by one `iptables-restore --noflush` (which flushes a
//! declared chain first, so filling is idempotent), and one jump to each
//! from `POSTROUTING` and `FORWARD`. The filter jump is made last: while it
//! is there, the rest is. `remove_bridge_rules` removes what the CNI
//! firewall plugin left for networks made before.

use crate::error::{Error, Result};
use crate::network::Network;
use std::process::Command;

const CHAINS: &[&str] = &["CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"];

/// Bridges of wharf networks are `wharf<N>`: traffic between two of them is
/// dropped.
const BRIDGES: &str = "wharf+";

fn chains(net: &Network) -> (String, String) {
    let id: String = net.id.chars().take(12).collect();
    (format!("WHARF-N-{id}"), format!("WHARF-F-{id}"))
}

fn iptables(args: &[&str]) -> Result<std::process::Output> {
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| Error::io("run iptables (apt-get install iptables)", e))
}

/// The jumps to `net`'s chains from the built-in chains: (table, chain, rule).
fn jumps(net: &Network) -> Result<Vec<[String; 3]>> {
    let (nat, filter) = chains(net);
    let mut v = Vec::new();
    if !net.internal {
        let subnet = net.subnet()?.to_string();
        v.push(["nat".into(), "POSTROUTING".into(), format!("-s {subnet} -j {nat}")]);
    }
    v.push(["filter".into(), "FORWARD".into(), format!("-j {filter}")]);
    Ok(v)
}

/// The `iptables-restore` input that declares and fills `net`'s chains.
fn restore_input(net: &Network) -> Result<String> {
    let (nat, filter) = chains(net);
    let (br, subnet) = (&net.bridge, net.subnet()?.to_string());
    let c = format!("-m comment --comment \"wharf network {}\"", net.name);
    let mut s = String::new();
    if !net.internal {
        s += &format!("*nat\n:{nat} - [0:0]\n-A {nat} -d {subnet} {c} -j RETURN\n");
        s += &format!("-A {nat} -d 224.0.0.0/4 {c} -j RETURN\n-A {nat} {c} -j MASQUERADE\nCOMMIT\n");
    }
    s += &format!("*filter\n:{filter} - [0:0]\n-A {filter} -i {br} -o {br} {c} -j ACCEPT\n");
    if net.internal {
        s += &format!("-A {filter} -i {br} {c} -j DROP\n-A {filter} -o {br} {c} -j DROP\n");
    } else {
        s += &format!("-A {filter} -i {br} -o {BRIDGES} {c} -j DROP\n-A {filter} -i {br} {c} -j ACCEPT\n");
        s += &format!("-A {filter} -o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT\n");
    }
    Ok(s + "COMMIT\n")
}

/// Whether `net`'s rules are in place (one exec: its filter jump is made last).
pub(crate) fn present(net: &Network) -> bool {
    let Ok(j) = jumps(net) else { return false };
    let [table, chain, rule] = &j[j.len() - 1];
    let mut args = vec!["-t", table, "-C", chain];
    args.extend(rule.split(' '));
    iptables(&args).is_ok_and(|o| o.status.success())
}

/// Makes `net`'s chains and jumps; leaves nothing on failure. The host lock
/// is held (no other store's network can take the bridge meanwhile).
pub(crate) fn install(net: &Network) -> Result<()> {
    let res = install_inner(net);
    if res.is_err() {
        let _ = remove(net);
    }
    res
}

fn install_inner(net: &Network) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("run iptables-restore (apt-get install iptables)", e))?;
    let input = restore_input(net)?;
    let written = child.stdin.take().map(|mut i| i.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| Error::io("run iptables-restore", e))?;
    if !out.status.success() || !matches!(written, Some(Ok(()))) {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Network(format!("iptables-restore for network {}: {}", net.name, err.trim())));
    }
    for [table, chain, rule] in jumps(net)? {
        let mut check = vec!["-t", &table, "-C", &chain];
        check.extend(rule.split(' '));
        if iptables(&check)?.status.success() {
            continue;
        }
        let mut add = vec!["-t", &table, "-I", &chain, "1"];
        add.extend(rule.split(' '));
        let out = iptables(&add)?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Network(format!("iptables -I {chain} {rule}: {}", err.trim())));
        }
    }
    Ok(())
}

/// Removes `net`'s jumps and chains; what is already gone is fine.
pub(crate) fn remove(net: &Network) -> Result<()> {
    for [table, chain, rule] in jumps(net)? {
        let mut del = vec!["-t", &table, "-D", &chain];
        del.extend(rule.split(' '));
        // A rule made twice (two stores racing a reboot) is removed twice.
        for _ in 0..8 {
            if !iptables(&del)?.status.success() {
                break;
            }
        }
    }
    let (nat, filter) = chains(net);
    for (table, chain) in [("nat", nat), ("filter", filter)] {
        if iptables(&["-t", table, "-F", &chain])?.status.success() {
            let out = iptables(&["-t", table, "-X", &chain])?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                return Err(Error::Network(format!("iptables -X {chain}: {}", err.trim())));
            }
        }
    }
    Ok(())
}

/// Deletes every isolation rule naming `bridge` as in- or out-interface.
pub(crate) fn remove_bridge_rules(bridge: &str) -> Result<()> {
    for chain in CHAINS {
        let out = Command::new("iptables").args(["-w", "-t", "filter", "-S", chain]).output();
        let Ok(out) = out else { return Ok(()) };
        if !out.status.success() {
            continue; // no such chain: the plugin never ran here
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let words = split_words(line);
            let names_bridge = words.windows(2).any(|w| (w[0] == "-i" || w[0] == "-o") && w[1] == bridge);
            if words.first().map(String::as_str) != Some("-A") || !names_bridge {
                continue;
            }
            let st = Command::new("iptables")
                .args(["-w", "-t", "filter", "-D"])
                .args(&words[1..])
                .output()
                .map_err(|e| Error::io("run iptables", e))?;
            if !st.status.success() {
                return Err(Error::Network(format!(
                    "iptables -D {}: {}",
                    words[1..].join(" "),
                    String::from_utf8_lossy(&st.stderr).trim()
                )));
            }
        }
    }
    Ok(())
}

/// `iptables -S` words: blanks separate, double quotes group.
fn split_words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    fn net(internal: bool) -> super::Network {
        serde_json::from_value(serde_json::json!({
            "name": "n1", "id": "0123456789abcdef", "driver": "bridge", "bridge": "wharf7",
            "subnet": "10.1.2.0/24", "gateway": "10.1.2.1", "internal": internal,
            "dns_enabled": false, "created": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn a_network_masquerades_its_subnet_and_drops_other_bridges() {
        let s = super::restore_input(&net(false)).unwrap();
        assert!(s.contains("-A WHARF-N-0123456789ab -d 10.1.2.0/24 "), "{s}");
        assert!(s.contains("-A WHARF-N-0123456789ab -m comment --comment \"wharf network n1\" -j MASQUERADE"), "{s}");
        assert!(s.contains("-i wharf7 -o wharf+ -m comment --comment \"wharf network n1\" -j DROP"), "{s}");
        let j = super::jumps(&net(false)).unwrap();
        assert_eq!(j[0][2], "-s 10.1.2.0/24 -j WHARF-N-0123456789ab");
        assert_eq!(j[1][2], "-j WHARF-F-0123456789ab");
    }

    #[test]
    fn an_internal_network_has_no_way_out_and_no_masquerade() {
        let s = super::restore_input(&net(true)).unwrap();
        assert!(
            !s.contains("*nat") && s.contains("-i wharf7 -m comment --comment \"wharf network n1\" -j DROP"),
            "{s}"
        );
        assert_eq!(super::jumps(&net(true)).unwrap().len(), 1);
    }

    #[test]
    fn words() {
        let w = super::split_words(r#"-A X -i wharf0 ! -o wharf0 -m comment --comment "a b (c)" -j Y"#);
        assert_eq!(
            w,
            ["-A", "X", "-i", "wharf0", "!", "-o", "wharf0", "-m", "comment", "--comment", "a b (c)", "-j", "Y"]
        );
    }
}
