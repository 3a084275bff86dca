import asyncio, json
from bench.tools import tool_turns
from bench.harness import Latency
print(json.dumps(asyncio.run(tool_turns("sqlite", Latency(), 5, 20))))
