"""Neural surrogates (torch) trained from the declared physics models; see docs/surrogates.md.

Modules (imported directly, so that loading a line config or a control plan never imports torch):

* :mod:`.design` — seeded space-filling training designs (states, input programmes, recipe knots, parameters);
* :mod:`.dataset` — parallel generation and versioned storage of training datasets;
* :mod:`.scaling`, :mod:`.mlp`, :mod:`.training_loop` — scaled coordinates, the MLP, the training loop;
* :mod:`.state_transition` — ``x_{k+1} = x_k + Δt·f_θ(x_k, u_k, p)`` surrogate of any declared model;
* :mod:`.outlet_curve` — chromatography outlet-curve surrogate on a reduced (SVD) basis;
* :mod:`.casadi_mlp` — the trained network as casadi expressions (NMPC);
* :mod:`.artifact`, :mod:`.fingerprint` — artifact directories, declaration and dataset hashes;
* :mod:`.envelope`, :mod:`.metrics`, :mod:`.report` — validity envelope, NRMSE, PNG report;
* :mod:`.pipeline`, :mod:`.cli` — design → dataset → training → test → artifact; ``linetwin surrogate``;
* :mod:`.monitor`, :mod:`.twin_options` — the surrogate beside the physics model on live data in the twin.
"""
