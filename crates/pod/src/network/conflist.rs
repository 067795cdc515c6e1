//! A network's CNI conflist, generated from its record: `bridge` with
//! host-local IPAM (state under the store's root, never /var/lib/cni),
//! `portmap` (only when the container publishes ports: a plugin with nothing
//! to do still costs an exec). No `ipMasq` and no `firewall` plugin: the
//! masquerade and the isolation are the network's own rules (`firewall`),
//! made once, not per container.

use crate::error::Result;
use crate::network::Network;
use serde_json::{json, Value};
use std::path::Path;

pub(crate) const CNI_VERSION: &str = "1.0.0";

pub(crate) fn generate(net: &Network, ipam_dir: &Path, with_ports: bool) -> Result<Value> {
    let subnet = net.subnet()?;
    let routes = if net.internal { json!([]) } else { json!([{"dst": "0.0.0.0/0"}]) };
    let mut plugins = vec![json!({
        "type": "bridge",
        "bridge": net.bridge,
        "isGateway": true,
        "ipMasq": false,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": subnet.to_string(), "gateway": net.gateway.to_string()}]],
            "routes": routes,
            "dataDir": ipam_dir,
        },
    })];
    if with_ports {
        plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}));
    }
    Ok(json!({"cniVersion": CNI_VERSION, "name": net.name, "plugins": plugins}))
}
