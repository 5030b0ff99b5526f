// Imported before aws-embedded-metrics (it resolves its environment when it loads): the agent's EMF
// lines go to stdout, which the task's awslogs driver ships to CloudWatch Logs. Left to detect ECS
// itself, the library would send them to a CloudWatch agent on port 25888 that is not there.
process.env.AWS_EMF_ENVIRONMENT = 'Local';
export {};
