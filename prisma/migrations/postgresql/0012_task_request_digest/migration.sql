-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "requestDigest" TEXT;

