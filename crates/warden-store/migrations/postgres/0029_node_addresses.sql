-- Where each node is reached by the others (its `node_url`), for node-to-node calls: a request
-- on one node for a host connected to another is relayed to that node. Keyed like
-- `hosts.connected_node` names a node (the node id, 32 hex digits). Platform data.
CREATE TABLE node_addresses (
    node_id    TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
