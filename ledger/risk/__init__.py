"""Fund sizing: stress paths over a positions snapshot, the policy's waterfall, and the
statistics a risk committee sizes the fund by (`backstop risk`). Pure: no database."""
