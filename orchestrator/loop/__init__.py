"""The closed loop's domain: whether sustained drift starts a retrain now (``decide``), whether a retrained model
beats the one it would replace (``compare``), and the records of both kept in the artifact store (``records``,
``state``). Pure rules on data; running the retrain and the deploy is the use cases' business."""
