//! What the CNI firewall plugin leaves on purpose: its `same-bridge`
//! isolation rules are per bridge, and its DEL keeps them (it cannot know
//! whether the bridge still has containers). We know when a network is
//! removed: its bridge's rules go with it.

use crate::error::{Error, Result};
use std::process::Command;

const CHAINS: &[&str] = &["CNI-ISOLATION-STAGE-1", "CNI-ISOLATION-STAGE-2"];

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
    #[test]
    fn words() {
        let w = super::split_words(r#"-A X -i wharf0 ! -o wharf0 -m comment --comment "a b (c)" -j Y"#);
        assert_eq!(
            w,
            ["-A", "X", "-i", "wharf0", "!", "-o", "wharf0", "-m", "comment", "--comment", "a b (c)", "-j", "Y"]
        );
    }
}
