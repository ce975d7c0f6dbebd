"""The event-driven chip simulator (Numba): :func:`simulate`, split by job into
:mod:`.layout` (counter columns, packed tables and their records), :mod:`.build`
(Program -> kernel tables), :mod:`.kernel` (the functional kernel), :mod:`.timing` (the
compiled cycle timing), :mod:`.timing_ref` (its plain-Python twin), :mod:`.timing_router`
and :mod:`.timing_router_ref` (the timing on the router model) and :mod:`.run`
(:func:`simulate`, the only caller of the trace writers).

Semantics (sync mode) are those of :mod:`models.intref` exactly: within a step the
populations are evaluated in net order; a population's tiles process their input
events (an event = a nonzero source value on an axon row: the row's stored weights are
read and multiplied into per-(projection, post) accumulators, one AC per weight for a
spike source, one MAC for a real-valued graph input; a convolution compiled
geometrically, :mod:`hwsim.conv_rows`, scatters the event from its kernel and geometry
and its rows add only their counts), every partial-sum tile of a
projection adds into the same accumulator, each projection's sum is shifted by its
``acc_shift`` (``rshift_round``) and the neurons update per the integer contract (each
model's Numba step from the table :mod:`models.neurons`; spikes, reset and the membrane
floor ``v_min`` after them, as :mod:`models.intref` writes them).

Counters (per core and step, summed over samples; :data:`COUNTERS`): input events,
ACs, MACs, neuron updates, spikes out, state words (neuron updates, x2 for CubaLIF and
CubaLI: each model's ``state_words``),
partial-sum ops (a partial tile that received at least one event adds its ``n_cols``
partial sums into its soma; counted on the soma's core), packets, flits and flit-hops
(spike packets: one per spiking neuron with remote destinations, per destination core
with ``multicast="unicast"``; with binary events a multi-spike count sends one packet
per spike; partial-sum packets ``n_cols * ceil(membrane_bits / flit_bits)`` flits, as
``mapper.map_model`` counts traffic), busy cycles
(integrate + fire cycles). Weight bits and state bits are derived in :class:`RunResult`.

Timing (sync mode, :mod:`.timing`): per core and step, integrate cycles = sum over its
events of ``ceil(used columns of the row / pe_width) + event_overhead_cycles``, fire
cycles = sum over its soma tiles of ``ceil(n_cols / pe_width)``. Layer-serial: a
population's cores start integrating when every delay-0 source population is done (its
spikes delivered); partial sums are injected when the partial tile's core finished
integrating, the soma fires when its own integration is done and all partial sums have
arrived; spike packets are injected at the end of the fire phase and simulated with
:func:`hwsim.noc.simulate_noc` (one call per population and phase; populations do not
overlap in sync mode). The step ends at the last completion + ``barrier_cycles``; a
fixed ``step_cycles`` pads the step (``max(busy, step_cycles)``) and counts overruns.
Sync: ``total_cycles`` = ``latency_cycles`` = the sum of the steps, throughput =
``clock_hz / total_cycles`` inferences/s (no overlap between inferences).

Pipelined mode (``chip.timing.mode == "pipelined"`` or ``simulate(..., mode=...)``).
Functional: every projection not from the graph input delivers the source's output of
one step earlier than declared (delay ``d`` -> ``d + 1``, bias terms start one step
later; see :mod:`hwsim.program`), i.e. exactly ``models.intref.simulate_int`` on the
net so transformed. Timing, per step: every core starts at
cycle 0 and integrates the events of the step (all sources' outputs of earlier
steps, delivered during the previous step), its cycles summed over all its tiles
(every population); a partial tile's psum packet is injected when its core's
integration ends; a core fires (sum of its soma tiles' fire cycles) at
``max(end of integration, last psum arrival)``; every spike of the step is injected
when its core's fire phase ends and must be delivered within the step (the next step
consumes it). Partial sums and spikes are two NoC simulations per step (they do not
contend with each other). Step = ``max(last fire end, last delivery)`` (+ fixed-step
padding) + ``barrier_cycles``. With ``cycles_per_step`` = mean step cycles of the
sample and ``depth`` = :func:`pipeline_depth` (delayed projections on the longest
declared-delay-0 chain from the input to the output population):
``throughput_inf_s = clock_hz / (cycles_per_step * T)`` and
``latency_cycles = (T + depth) * cycles_per_step`` (the output of the last input step
appears ``depth`` steps later; append ``depth`` empty steps to see it).

Inter-chip latency: after each NoC simulation, every destination's delivery is
delayed by ``crossings * max(0, noc.interchip_cycles - router_cycles - link_cycles)``
(``crossings`` = chip boundaries on its XY path). This is applied after the
contention simulation, so it does not change the link order downstream
(an approximation; :mod:`hwsim.noc` itself treats every link alike).

Router model (``noc.router_model = "wormhole"``, default ``"ideal"``): the same phases,
but every packet of a step (partial sums and spikes) goes through one simulation of
the wormhole/VC router mesh (:mod:`hwsim.router`), packets added as the phases that
create them resolve, per (population, core) pair: :mod:`.timing_router` (compiled),
:mod:`.timing_router_ref` (its twin, also the Chrome timeline's source then).

New counters: ``interchip_flits`` (flits x chip-boundary crossings of spike and
partial-sum packets, and of input events from the I/O port, which belongs to chip
(0, 0)); ``io_in_flits`` / ``io_in_flit_hops``: input events entering through the
I/O port at global (-1, 0) (one packet per destination core with unicast, one
xy-tree packet otherwise; one flit per spike for a spiking input with binary events,
``ceil(input_bits / flit_bits)`` flits per value for a real-valued input; hops from
the port, the injection link included), counted on the event's lowest-numbered
destination core; ``io_out_flits``: outputs of the output population leaving the chip
(one flit per spike with binary events, one per nonzero value otherwise;
``ceil(membrane_bits / flit_bits)`` for a non-spiking output), on the neuron's core;
the route to the port is not modelled. I/O traffic is not part of the ideal NoC's
timing; the wormhole model times input events (sync mode, :mod:`.timing_router`).

Traces (:mod:`traces`, through one :class:`traces.TraceSession`): AER ``.npz``, VCD and
Chrome trace JSON, off by default; the Chrome timeline and the VCD's cycle timebase come
from the step-by-step Python model (:mod:`.timing_ref`) of their sample.
"""

from models.intarith import rshift_round_nb, saturate_nb  # noqa: F401 (the kernels' integer helpers)

from .build import kernel_inputs, work_layout  # noqa: F401
from .inputs import input_array  # noqa: F401
from .layout import COUNTERS  # noqa: F401
from .run import samples_per_call, simulate  # noqa: F401
from .timing_ref import pipeline_depth, reference_net  # noqa: F401

__all__ = ["simulate", "COUNTERS", "pipeline_depth", "reference_net", "rshift_round_nb", "saturate_nb"]
