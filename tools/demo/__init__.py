"""`captives demo`: a synthetic scenario with fictional captives that follows the real timeline of
../shared/domain/BRIEF.md (captures in Kursk oblast in January 2025, the acknowledgement of
2025-04-28, the swap agreed in Istanbul on 2025-05-16, a transfer to South Korea under Art. 12),
loaded into the running services over HTTP, each step by the person whose work it is, signed in
to the stack's Keycloak as himself (one person per step: the proposer and the approver of a
transfer are two), printing what changed at each step.

The rules are applied again at every step that moves a person (docs/legal-basis.md, "The moment
a rule applies"), and the story shows it twice: a captive whose face is broadcast after the
exchange list was approved is withheld when the list is carried out, and a transfer approved
before proceedings were opened against him is refused at the moment of hand-over (409, recorded
as a DispositionStepRefused), then carried out once the proceedings are closed.

The scenario is data: the vocabulary in steps.py, the people and SCENARIO in story.py. The runner
(runner.py) performs each step through actions.py, one function per kind of action, talking to the
services through client.py; it waits until the consequence is visible in the disposition service
(the last to hear of anything), and shows the difference.

Running it twice is safe: every write carries an Idempotency-Key made of the scenario's name and
the step, so the services answer a repeated step with their first answer (a refusal too) and
record nothing twice, and a run that stopped half-way resumes where it stopped. Generating new
people on every run would not tell the story: the acknowledgement of 2025-04-28 is a fact about
the conflict, in force for everyone registered after it, so a second cast would never be
"presumed POW".
"""
