"""Property: whatever the workload and however a drain's threads interleave, the DisruptionLedger never lets the
drain start more evictions through a PodDisruptionBudget than the budget allows.

A model API server keeps, per PDB, its pods' health; it does NOT enforce budgets (the ledger alone is under test).
Hypothesis picks the budgets and every step: reads that begin, take their snapshot and end at different moments;
evictions that start, take effect on the server and are answered at different moments; evicted pods that come back
Ready elsewhere. At every step no budget has fewer healthy pods than it desires.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.selfmanaged.eks.plugins.module_utils.drain import DisruptionLedger

budgets = st.lists(
    st.tuples(st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=6)).map(
        lambda t: {"expected": t[0], "desired": min(t[1], t[0])}),
    min_size=1, max_size=3,
)


class ModelServer:
    def __init__(self, specs):
        self.specs = specs
        self.healthy = [spec["expected"] for spec in specs]

    def allowed(self, index):
        return max(0, self.healthy[index] - self.specs[index]["desired"])


@settings(max_examples=1000, deadline=None)
@given(specs=budgets, data=st.data())
def test_never_more_concurrent_disruptions_than_the_budgets_allow(specs, data):
    server, ledger = ModelServer(specs), DisruptionLedger()
    keys = ["pdb-{0}".format(i) for i in range(len(specs))]
    reads = []         # [index, token, snapshot or None]
    evictions = []     # [index, ticket, applied]
    down = []          # indexes of pods evicted and not yet back
    for _step in range(data.draw(st.integers(min_value=1, max_value=60), label="steps")):
        choice = data.draw(st.sampled_from(["begin_read", "snapshot", "end_read", "start", "apply", "answer", "recover"]))
        index = data.draw(st.integers(min_value=0, max_value=len(specs) - 1))
        if choice == "begin_read":
            reads.append([index, ledger.read_started(), None])
        elif choice == "snapshot" and reads:
            read = data.draw(st.sampled_from([r for r in reads]))
            if read[2] is None:
                read[2] = server.allowed(read[0])
        elif choice == "end_read":
            done = [r for r in reads if r[2] is not None]
            if done:
                read = data.draw(st.sampled_from(done))
                reads.remove(read)
                ledger.observe(keys[read[0]], read[2], read[1])
        elif choice == "start":
            ticket = ledger.try_start(keys[index])
            if ticket is not None:
                evictions.append([index, ticket, False])
        elif choice == "apply":
            pending = [e for e in evictions if not e[2]]
            if pending:
                eviction = data.draw(st.sampled_from(pending))
                eviction[2] = True
                server.healthy[eviction[0]] -= 1
                down.append(eviction[0])
        elif choice == "answer":
            applied = [e for e in evictions if e[2]]
            if applied:
                eviction = data.draw(st.sampled_from(applied))
                evictions.remove(eviction)
                ledger.finished(eviction[1], True)
        elif choice == "recover" and down:
            back = down.pop(data.draw(st.integers(min_value=0, max_value=len(down) - 1)))
            server.healthy[back] += 1
        for i, spec in enumerate(specs):
            assert server.healthy[i] >= spec["desired"], "budget {0} overspent: {1} healthy, {2} desired".format(
                i, server.healthy[i], spec["desired"])


@settings(max_examples=100, deadline=None)
@given(expected=st.integers(min_value=2, max_value=8), data=st.data())
def test_a_drain_of_every_pod_completes_one_budget_at_a_time(expected, data):
    """Liveness: with disruptionsAllowed >= 1 whenever all pods are back, a drain that reads, evicts and waits always
    gets every pod out (the ledger does not deadlock on its own bookkeeping)."""
    desired = data.draw(st.integers(min_value=0, max_value=expected - 1))
    server, ledger = ModelServer([{"expected": expected, "desired": desired}]), DisruptionLedger()
    remaining = expected
    for _round in range(expected * 4):
        if not remaining:
            break
        ledger.observe("p", server.allowed(0), ledger.read_started())
        started = []
        while remaining and len(started) < remaining:
            ticket = ledger.try_start("p")
            if ticket is None:
                break
            server.healthy[0] -= 1
            ledger.finished(ticket, True)
            started.append(ticket)
        assert server.healthy[0] >= desired
        remaining -= len(started)
        server.healthy[0] = expected  # replacements Ready elsewhere
    assert remaining == 0
