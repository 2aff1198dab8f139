"""A small text-adventure agent environment whose states recur across trajectories.

The world is fixed (rooms, a key, a locked door to the garden), so trajectories of a group keep
revisiting the same observations: exactly the "anchor states" GiGPO groups steps by. Ground truth
is exact: a step is labelled good when its action moves the agent one step closer to the goal
under the optimal policy (breadth-first distances over the full state space).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

ADJACENT: dict[str, tuple[str, ...]] = {
    "hall": ("kitchen", "library", "cellar"),
    "kitchen": ("hall",),
    "library": ("hall",),
    "cellar": ("hall",),
    "garden": (),
}
KEY_ROOM = "cellar"
DOOR_ROOM = "library"  # the locked door to the garden is in the library
START_ROOMS: tuple[str, ...] = ("hall", "kitchen", "library", "cellar")
ALL_ACTIONS: tuple[str, ...] = (
    "go hall", "go kitchen", "go library", "go cellar", "go garden",
    "take key", "open door", "dance", "take sword",
)  # fmt: skip
REWARD_KEY = 0.2
REWARD_INVALID = -0.1
REWARD_GOAL = 1.0
MAX_STEPS = 10


@dataclass(frozen=True)
class World:
    """Agent state: where it is, whether it carries the key, whether the door is open."""

    room: str
    has_key: bool = False
    door_open: bool = False

    @property
    def observation(self) -> str:
        """What the agent sees; identical worlds give identical text (GiGPO anchor states)."""
        exits = list(ADJACENT[self.room])
        if self.room == DOOR_ROOM and self.door_open:
            exits.append("garden")
        items = "a key" if self.room == KEY_ROOM and not self.has_key else "nothing"
        door = ""
        if self.room == DOOR_ROOM:
            door = f" A door to the garden is {'open' if self.door_open else 'locked'}."
        inventory = "key" if self.has_key else "empty"
        return f"You are in the {self.room}. Exits: {', '.join(exits)}. You see {items}.{door} Inventory: {inventory}."


def step(world: World, action: str) -> tuple[World, float, bool]:
    """Apply ``action``; returns the next world, the reward and whether the action was valid."""
    if action.startswith("go "):
        target = action[3:]
        allowed = ADJACENT[world.room] + (("garden",) if world.room == DOOR_ROOM and world.door_open else ())
        if target in allowed:
            nxt = World(target, world.has_key, world.door_open)
            return nxt, (REWARD_GOAL if target == "garden" else 0.0), True
        return world, REWARD_INVALID, False
    if action == "take key" and world.room == KEY_ROOM and not world.has_key:
        return World(world.room, True, world.door_open), REWARD_KEY, True
    if action == "open door" and world.room == DOOR_ROOM and world.has_key and not world.door_open:
        return World(world.room, True, True), 0.0, True
    return world, REWARD_INVALID, False


def _distances() -> dict[World, int]:
    """Steps-to-goal of every reachable world, by a forward BFS from each state (the state space has 20 worlds)."""
    states = [World(r, k, d) for r in ADJACENT for k in (False, True) for d in (False, True)]
    dist: dict[World, int] = {}
    for start in states:
        seen = {start: 0}
        queue = deque([start])
        found = None
        while queue:
            cur = queue.popleft()
            if cur.room == "garden":
                found = seen[cur]
                break
            for action in ALL_ACTIONS:
                nxt, _, ok = step(cur, action)
                if ok and nxt not in seen:
                    seen[nxt] = seen[cur] + 1
                    queue.append(nxt)
        dist[start] = found if found is not None else 10**6
    return dist


DISTANCE: dict[World, int] = _distances()


def optimal_actions(world: World) -> list[str]:
    """Actions that bring the agent one step closer to the garden."""
    here = DISTANCE[world]
    return [a for a in ALL_ACTIONS if step(world, a)[2] and DISTANCE[step(world, a)[0]] == here - 1]


def action_tokens(action: str, best: list[str], error_rate: float) -> dict[str, list]:
    """Per-token arrays of ``action`` under the scripted policy of :func:`rollout`, exactly.

    The policy picks one of ``best`` uniformly with probability ``1 - error_rate``, else any of
    :data:`ALL_ACTIONS` uniformly. Tokens are the action's words (the second with its space); a token's
    log-prob is log P(token | earlier tokens) and its entropy that of the next-word distribution there,
    so the log-probs of an action sum to its log-probability.
    """
    slip = error_rate / len(ALL_ACTIONS)
    prob = {a: slip + ((1 - error_rate) / len(best) if a in best else 0.0) for a in ALL_ACTIONS}
    words = action.split(" ")
    tokens, logprobs, entropies = [], [], []
    for position in range(len(words)):
        prefix = words[:position]
        # The next word's distribution given the words so far, over the actions that start with them.
        nexts: dict[str, float] = {}
        for a, p in prob.items():
            a_words = a.split(" ")
            if a_words[:position] == prefix and len(a_words) > position:
                nexts[a_words[position]] = nexts.get(a_words[position], 0.0) + p
        total = sum(nexts.values())
        tokens.append(words[position] if position == 0 else " " + words[position])
        logprobs.append(round(math.log(nexts[words[position]] / total), 6))
        entropies.append(round(-sum(p / total * math.log(p / total) for p in nexts.values() if p > 0), 6))
    return {"tokens": tokens, "token_logprobs": logprobs, "token_entropies": entropies}


def rollout(start_room: str, rng: np.random.Generator, error_rate: float) -> list[dict]:
    """One episode of the scripted policy: optimal with probability 1 - error_rate, else a random action."""
    world = World(start_room)
    steps = []
    for _ in range(MAX_STEPS):
        best = optimal_actions(world)
        if rng.random() < error_rate:
            action = ALL_ACTIONS[int(rng.integers(0, len(ALL_ACTIONS)))]
        else:
            action = best[int(rng.integers(0, len(best)))]
        nxt, reward, valid = step(world, action)
        steps.append(
            {
                "state": world.observation,
                "action": action,
                "reward": reward,
                "valid": valid,
                "label": 1.0 if action in best else 0.0,
                **action_tokens(action, best, error_rate),
            }
        )
        world = nxt
        if world.room == "garden":
            break
    return steps
