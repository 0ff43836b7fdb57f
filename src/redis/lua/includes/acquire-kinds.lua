-- What limit-acquire.lua answers; the same numbers as ACQUIRE_KIND in src/limits/acquire-reply.ts.
local GO, DEFERRED, BLOCKED, PAUSED = 1, 2, 3, 4
