/**
 * What rooms across nodes keep in Redis, and the Lua scripts that change it atomically. Every key
 * carries a TTL of 3 heartbeats that the nodes using it refresh, so nothing outlives its nodes.
 *
 *   node:<id>         "1"                     a live node (refreshed every heartbeat)
 *   nodes             set of node ids         who to look at for grants and listener counts
 *   grants:<id>       set of <sha256>:<role>:<room>   the room keys node <id> was started with
 *   listeners         hash node -> count      joined listeners, for the cluster-wide limit
 *   room:<r>:pubs     hash n -> {"node","info"?}   publisher slots of room r (info once started)
 *   room:<r>:next     hash n -> next frame    where publisher n's timeline is (for late joiners)
 *   room:<r>:seq      counter                 publisher numbers of room r
 *   channel room:<r>  relayed packets and publisher events of room r
 */
export const PREFIX = 'tokstream:rooms:';

export const redisKeys = {
  nodePrefix: `${PREFIX}node:`,
  grantsPrefix: `${PREFIX}grants:`,
  nodes: `${PREFIX}nodes`,
  listeners: `${PREFIX}listeners`,
  node: (id: string) => `${PREFIX}node:${id}`,
  grants: (id: string) => `${PREFIX}grants:${id}`,
  /** pubs, next, seq: the order the room scripts take them in */
  room: (name: string) => [`${PREFIX}room:${name}:pubs`, `${PREFIX}room:${name}:next`, `${PREFIX}room:${name}:seq`] as const,
  channel: (name: string) => `${PREFIX}room:${name}`,
};

/**
 * Removes the slots of publishers whose node is gone and announces the end of those that had
 * started (the typed `publisher_left` every node relays to its listeners); returns the live slots.
 * KEYS: pubs, next. Needs the node key prefix and the room's channel.
 */
const SWEEP = `
local function sweep(pubs, nxt, nodePrefix, channel)
  local live = 0
  local f = redis.call('HGETALL', pubs)
  for i = 1, #f, 2 do
    local e = cjson.decode(f[i + 1])
    if redis.call('EXISTS', nodePrefix .. e.node) == 1 then
      live = live + 1
    else
      redis.call('HDEL', pubs, f[i])
      local frames = redis.call('HGET', nxt, f[i]) or '0'
      redis.call('HDEL', nxt, f[i])
      if e.info then
        redis.call('PUBLISH', channel, '{"type":"publisher_left","publisher":' .. f[i] .. ',"frames":' .. frames .. '}')
      end
    end
  end
  return live
end
`;

export const SCRIPTS = {
  /** KEYS pubs next seq; ARGV nodePrefix channel node maxPublishers ttlMs -> publisher number, or -1 when full */
  roomReserve: {
    numberOfKeys: 3,
    lua: `${SWEEP}
if sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) >= tonumber(ARGV[4]) then return -1 end
local n = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], n, cjson.encode({node = ARGV[3]}))
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return n`,
  },
  /** KEYS pubs next; ARGV channel publisher frames started(0|1): frees a slot, announcing the end once */
  roomRelease: {
    numberOfKeys: 2,
    lua: `
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
if ARGV[4] == '1' then
  redis.call('PUBLISH', ARGV[1], '{"type":"publisher_left","publisher":' .. ARGV[2] .. ',"frames":' .. ARGV[3] .. '}')
end
return 1`,
  },
  /** KEYS pubs next seq; ARGV nodePrefix channel ttlMs: the heartbeat of a room this node takes part in */
  roomRefresh: {
    numberOfKeys: 3,
    lua: `${SWEEP}
sweep(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 0`,
  },
  /** KEYS listeners; ARGV nodePrefix node maxListeners ttlMs -> listeners joined in the cluster, or -1 when full */
  listenerAdmit: {
    numberOfKeys: 1,
    lua: `
local total = 0
local f = redis.call('HGETALL', KEYS[1])
for i = 1, #f, 2 do
  if f[i] == ARGV[2] or redis.call('EXISTS', ARGV[1] .. f[i]) == 1 then total = total + tonumber(f[i + 1])
  else redis.call('HDEL', KEYS[1], f[i]) end
end
if total >= tonumber(ARGV[3]) then return -1 end
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return total + 1`,
  },
  /**
   * KEYS node nodes grants listeners; ARGV ttlMs node nodePrefix grantsPrefix listenerCount grant...
   * -> every live node's grants. Forgets nodes that are gone.
   */
  nodeHeartbeat: {
    numberOfKeys: 4,
    lua: `
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if #ARGV > 5 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 6))
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[5])
redis.call('PEXPIRE', KEYS[4], ARGV[1])
local union = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[3] .. n) == 1 then
    for _, g in ipairs(redis.call('SMEMBERS', ARGV[4] .. n)) do union[#union + 1] = g end
  else
    redis.call('SREM', KEYS[2], n)
    redis.call('HDEL', KEYS[4], n)
  end
end
return union`,
  },
} as const;
